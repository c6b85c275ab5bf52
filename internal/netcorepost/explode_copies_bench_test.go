package netcorepost

import (
	"net/url"
	"runtime"
	"strings"
	"testing"
)

// BenchmarkCopiesOf numbers the copies of a post as the disk queue does when
// it reads one (compact JSON): a post of 10 events, none identical, as
// nearly every post is; and 100k identical clicks (no ts, no msgid), the
// worst case. retained-B is what the numbering keeps, held by the queue
// for as long as the post is open (hours in an outage).
//
//	go test ./internal/netcorepost/ -run '^$' -bench CopiesOf -benchmem
func BenchmarkCopiesOf(b *testing.B) {
	click := `{"channel":"custom_activity","webhook_name":"Click","event_params":{"activity_source":"web","activity_id":7,"identity":"user@example.com"}}`
	for _, bm := range []struct {
		name string
		body []byte
	}{
		{"10 events", benchPost(10)},
		{"100k identical events", []byte("data=" + url.QueryEscape(`{"click":[`+strings.Repeat(click+",", 99_999)+click+`]}`))},
	} {
		b.Run(bm.name, func(b *testing.B) {
			post, err := DecodeBody("application/x-www-form-urlencoded", bm.body)
			if err != nil || !post.Compact {
				b.Fatalf("the post is not compact JSON (%v)", err)
			}
			b.SetBytes(int64(len(post.Data)))
			b.ReportAllocs()
			for b.Loop() {
				CopiesOf(post.Panels, true)
			}
			b.ReportMetric(float64(retainedBy(func() any { return CopiesOf(post.Panels, true) })), "retained-B")
			runtime.KeepAlive(post) // not freed while retainedBy measures
		})
	}
}

// retainedBy is how many bytes of heap what f returns holds on to.
func retainedBy(f func() any) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}
