package diskqueue

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// BenchmarkQueuePut stores posts of 10 events of about 1 KB, each post
// durably (fsync'd) before it counts, from 1, 16 and 64 concurrent writers:
// the 200 latency that Netcore sees, without HTTP. Figures go to
// BENCHMARKS.md:
//
//	go test ./plugins/diskqueue/ -run '^$' -bench QueuePut -benchtime 3000x
func BenchmarkQueuePut(b *testing.B) {
	event := `{"channel":"custom_activity","event_params":{"ts":240301101500,"identity":"asha@example.com","payload":"` + strings.Repeat("x", 900) + `"}}`
	for _, writers := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			q, err := openQueue(queueConfig{
				path:         filepath.Join(b.TempDir(), "events.db"),
				maxBytes:     1 << 40,
				maxEvents:    1 << 40,
				dedupeWindow: 10 * time.Minute,
				dedupeMaxIDs: 1 << 30,
				retryInitial: time.Second,
				retryMax:     time.Minute,
				readMemory:   defaultReadMemory,
			})
			if err != nil {
				b.Fatal(err)
			}
			defer q.close(b.Context())

			latencies := make([]time.Duration, b.N)
			var wg sync.WaitGroup
			next := make(chan int)
			b.ResetTimer()
			start := time.Now()
			for range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range next {
						recs, ids := make([][]byte, 10), make([]string, 10)
						for j := range recs {
							msg := service.NewMessage([]byte(event))
							ids[j] = fmt.Sprintf("post-%d-event-%d", i, j)
							msg.MetaSetMut("netcore_event_id", ids[j])
							recs[j], _ = encodeRecord(msg, time.Now())
						}
						t0 := time.Now()
						done := make(chan error, 1)
						if err := q.put(recs, ids, nil, func(err error, _ []int) { done <- err }); err != nil {
							b.Error(err)
							return
						}
						if err := <-done; err != nil {
							b.Error(err)
							return
						}
						latencies[i] = time.Since(t0)
					}
				}()
			}
			for i := range b.N {
				next <- i
			}
			close(next)
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()

			slices.Sort(latencies)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "posts/s")
			b.ReportMetric(float64(10*b.N)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(latencies[b.N/2].Microseconds())/1000, "p50_ms")
			b.ReportMetric(float64(latencies[b.N*99/100].Microseconds())/1000, "p99_ms")
			if fi, err := os.Stat(q.conf.path); err == nil {
				b.ReportMetric(float64(fi.Size())/float64(10*b.N), "file_bytes/event")
			}
		})
	}
}
