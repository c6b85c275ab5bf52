package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
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

// BenchmarkQueueDrain delivers a backlog already on disk, by 16 consumers
// at once, each event acknowledged on its own: events stored a record each,
// and posts of 10 events stored whole (explode), split as they are read.
// One event in ten fails once and comes back after its backoff. It measures
// the read path alone (next, ack, the deletes and marks they commit):
//
//	go test ./plugins/diskqueue/ -run '^$' -bench QueueDrain -benchtime 20000x
func BenchmarkQueueDrain(b *testing.B) {
	for _, posts := range []bool{false, true} {
		b.Run(fmt.Sprintf("posts=%t", posts), func(b *testing.B) {
			c := queueConfig{
				path:         filepath.Join(b.TempDir(), "events.db"),
				maxBytes:     1 << 40,
				maxEvents:    1 << 40,
				dedupeMaxIDs: 1,
				retryInitial: time.Millisecond,
				retryMax:     time.Millisecond,
				readMemory:   defaultReadMemory,
			}
			if posts {
				conf, err := service.NewConfigSpec().Fields(netcorepost.ExplodeFields("")...).ParseYAML(`timezone: UTC`, nil)
				if err != nil {
					b.Fatal(err)
				}
				if c.explode, err = netcorepost.NewExploder(conf); err != nil {
					b.Fatal(err)
				}
			}
			q, err := openQueue(c)
			if err != nil {
				b.Fatal(err)
			}
			defer q.close(b.Context())
			fillBacklog(b, q, posts, b.N)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			var delivered atomic.Int64
			ctx, drained := context.WithCancel(b.Context())
			defer drained()
			for range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for n := 0; delivered.Load() < int64(b.N); n++ {
						l, err := q.next(ctx)
						if err != nil {
							if ctx.Err() == nil {
								b.Error(err)
							}
							return
						}
						if n%10 == 9 && l.attempts == 0 {
							q.ack(l, errors.New("500"))
							continue
						}
						q.ack(l, nil)
						if delivered.Add(1) == int64(b.N) {
							drained() // the others stop waiting
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// fillBacklog stores n events (rounded up to posts of 10) for a drain.
func fillBacklog(b *testing.B, q *queue, posts bool, n int) {
	b.Helper()
	event := `{"msgid":"m%d","event_params":{"ts":240301101500,"identity":"asha@example.com","payload":"` + strings.Repeat("x", 900) + `"}}`
	for i := 0; i < n; i += 10 {
		var recs [][]byte
		var keys [][]eventKey
		if posts {
			evs := make([]string, 10)
			for j := range evs {
				evs[j] = fmt.Sprintf(event, i+j)
			}
			rec, k, err := appendPostRecord(nil, postMessage(b, `{"panel":[`+strings.Join(evs, ",")+`]}`), time.Now())
			if err != nil {
				b.Fatal(err)
			}
			recs, keys = [][]byte{rec}, [][]eventKey{k}
		} else {
			for j := range 10 {
				rec, err := encodeRecord(service.NewMessage(fmt.Appendf(nil, event, i+j)), time.Now())
				if err != nil {
					b.Fatal(err)
				}
				recs, keys = append(recs, rec), append(keys, nil)
			}
		}
		done := make(chan error, 1)
		if err := q.putRecords(recs, keys, nil, func(err error, _ []int) { done <- err }); err != nil {
			b.Fatal(err)
		}
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}
