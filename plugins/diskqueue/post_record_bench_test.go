package diskqueue

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/bench/loadgen"
)

// BenchmarkAppendPostRecord encodes the record of a post of 10 events as
// the load generator sends them (compact JSON, about 450 bytes an event),
// with the dedupe key of each: the queue's share of the CPU of a post, before
// the commit.
func BenchmarkAppendPostRecord(b *testing.B) {
	_, body := loadgen.Post("product_search", "bench", 0, 10)
	data, err := url.QueryUnescape(strings.TrimPrefix(string(body), "data="))
	if err != nil {
		b.Fatal(err)
	}
	msg := postMessage(b, data)
	var rec []byte
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if rec, _, err = appendPostRecord(rec[:0], msg, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
