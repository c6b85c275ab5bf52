package tests

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/bench/loadgen"
)

// BenchmarkInspectorCost posts at 64 senders, 10 events a post, to the
// default pipeline with the inspector on and off, alternating, Meiro Events
// healthy, and reports acknowledged events/s for each and their ratio. With
// the inspector on, its page is opened once a second meanwhile, as an
// operator watching it would (the page refreshes itself every 3 s):
//
//	go test ./tests -run '^$' -bench InspectorCost -benchtime 3x
func BenchmarkInspectorCost(b *testing.B) {
	var on, off []float64
	for range b.N {
		off = append(off, postingRate(b, false))
		on = append(on, postingRate(b, true))
	}
	b.ReportMetric(mean(off), "off-events/s")
	b.ReportMetric(mean(on), "on-events/s")
	b.ReportMetric(mean(on)/mean(off), "ratio")
}

func postingRate(b *testing.B, inspect bool) float64 {
	b.Helper()
	m := newMeiro(b)
	env := m.env()
	inspectAddr := freeAddr(b)
	if inspect {
		env["NETCORE_INSPECT_ADDRESS"] = inspectAddr
	}
	p := startProcess(b, options{env: env})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if inspect {
		go func() {
			for ctx.Err() == nil {
				if resp, err := http.Get("http://" + inspectAddr + "/"); err == nil {
					resp.Body.Close()
				}
				time.Sleep(time.Second)
			}
		}()
	}
	r, err := loadgen.Run(ctx, loadgen.Config{URL: p.webhook, Concurrency: 64, EventsPerPost: 10, Duration: 8 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	p.stop(b)
	return r.EventsPerSec()
}
