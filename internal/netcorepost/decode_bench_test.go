package netcorepost

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// benchPost is a form body of n events shaped like Netcore's custom activity.
func benchPost(n int) []byte {
	events := make([]string, n)
	for i := range events {
		events[i] = fmt.Sprintf(`{"channel":"custom_activity","custom_params":{},"att_params":{"CITY":"Pune&Nashik","STATE":"Maharashtra"},"msgid":"%d","webhook_name":"Search webhook","payload_params":{"items":[{"category_s":"travel","prqt_s":1,"prid_s":88,"name_s":"BOM-DEL business","price_s":45999.5}]},"event_params":{"activity_source":"web","ts":240301101500,"activity_id":103,"identity":"user%d@example.com","guid":"6d1f0c1e-4b7a-4c55-9f65-0a5b2f7d3c11"},"journey_name":"business class search"}`, i, i)
	}
	return []byte("data=" + url.QueryEscape(`{"product_search":[`+strings.Join(events, ",")+`]}`))
}

// BenchmarkDecodeAndExplode is the request path's CPU work for one post of
// 10 events: decode and validate the form, then explode it into messages
// (the work of netcore_explode, which is this Exploder applied to a post).
//
//	go test ./internal/netcorepost/ -run '^$' -bench DecodeAndExplode -benchmem
func BenchmarkDecodeAndExplode(b *testing.B) {
	body := benchPost(10)
	p := newTestExploder(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		post, err := DecodeBody("application/x-www-form-urlencoded", body)
		if err != nil {
			b.Fatal(err)
		}
		msg := WithPost(service.NewMessage(post.Data), post)
		msg.MetaSetMut("netcore_received_at", "2026-11-27T10:00:00Z")
		if _, err := explode(p, msg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkDecodeBody is what the webhook does with a post of 10 events
// before it is stored: decode the form, check the JSON, split the panels.
// The disk queue stores posts whole (explode at read), so this is the
// request path's own CPU; the bare parser of netcore-bench does the same.
//
//	go test ./internal/netcorepost/ -run '^$' -bench DecodeBody -benchmem
func BenchmarkDecodeBody(b *testing.B) {
	body := benchPost(10)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeBody("application/x-www-form-urlencoded", body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQueryUnescape decodes the data field of a form of 10 events:
// in a Netcore post every quote, colon and comma of the JSON is escaped.
//
//	go test ./internal/netcorepost/ -run '^$' -bench QueryUnescape
func BenchmarkQueryUnescape(b *testing.B) {
	field := benchPost(10)[len("data="):]
	b.SetBytes(int64(len(field)))
	var dst []byte
	for b.Loop() {
		var err error
		if dst, err = queryUnescape(dst[:0], field); err != nil {
			b.Fatal(err)
		}
	}
}
