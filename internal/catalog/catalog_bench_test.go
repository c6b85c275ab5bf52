package catalog

import (
	"fmt"
	"testing"
)

// benchEvent is the benchmark driver's event (bench/loadgen), about 450
// bytes.
func benchEvent(i int) []byte {
	return []byte(fmt.Sprintf(`{"channel":"custom_activity","custom_params":{},"att_params":{"CITY":"Pune&Nashik","STATE":"Maharashtra"},"msgid":"m-%d","webhook_name":"Search webhook","payload_params":{"items":[{"dateofpurchase_sm":"2024-03-01 10:15:00","category_s":"travel","prqt_s":1,"prid_s":88,"name_s":"BOM-DEL business","price_s":45999.5}]},"event_params":{"activity_source":"web","ts":240301101500,"activity_id":103,"foreignkey":"cust-1","identity":"m-%d@example.com"}}`, i, i))
}

// BenchmarkLearnPost walks every event of a post of 10 (what one post
// costs the learner unsampled).
func BenchmarkLearnPost(b *testing.B) {
	c := New(Options{Mask: func(_ string, v []byte) string { return string(v) }})
	post := make([][]byte, 10)
	for i := range post {
		post[i] = benchEvent(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.Learn("product_search", post, "r", t0)
	}
}

// BenchmarkLearnPostSampled is the same at the lowest sampling: what a post
// costs the learner under load.
func BenchmarkLearnPostSampled(b *testing.B) {
	c := New(Options{})
	l := &Learner{every: MaxEvery, rng: newRand()}
	post := make([][]byte, 10)
	for i := range post {
		post[i] = benchEvent(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		c.learn("product_search", len(post), post, l.sample, "r", t0)
	}
}
