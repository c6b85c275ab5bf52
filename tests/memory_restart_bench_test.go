package tests

import (
	"testing"
)

// BenchmarkRestartOnAFullQueue reports the peak RSS of a restart on a queue
// filled to about its default 1 GiB while Meiro Events was down, of posts
// of 9.6 MB and of posts of 10 events, as peak-RSS-MiB. The tests in
// memory_restart_test.go hold the same bound on smaller backlogs;
// BENCHMARKS.md, Memory, has the figures (128 MiB on a full queue of
// 10-event posts):
//
//	go test ./tests/ -run '^$' -bench RestartOnAFullQueue -benchtime 1x
func BenchmarkRestartOnAFullQueue(b *testing.B) {
	for _, c := range []struct {
		name                 string
		posts, size, senders int
	}{
		{"posts-of-9.6MB", 105, 9_600_000, 4},
		{"posts-of-10-events", 110_000, 8_500, 16},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				b.ReportMetric(float64(restartOnBacklog(b, c.posts, c.size, c.senders))/1024, "peak-RSS-MiB")
			}
		})
	}
}
