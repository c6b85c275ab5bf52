package loadgen

import (
	"bufio"
	"io"
	"net/url"
	"strconv"
	"strings"
)

// eventTemplate is a custom_activity event as Netcore posts it (modelled on
// tests/testdata/samples/custom_activity.json), about 450 bytes once the two
// slots are filled. {ID} is replaced by a value unique to the event, in both
// msgid and event_params.identity, so that no system removes it as a repeat.
const eventTemplate = `{"channel":"custom_activity","custom_params":{},` +
	`"att_params":{"CITY":"Pune&Nashik","STATE":"Maharashtra"},` +
	`"msgid":"{ID}","webhook_name":"Search webhook",` +
	`"payload_params":{"items":[{"dateofpurchase_sm":"2024-03-01 10:15:00","category_s":"travel",` +
	`"prqt_s":1,"prid_s":88,"name_s":"BOM-DEL business","price_s":45999.5}]},` +
	`"event_params":{"activity_source":"web","ts":240301101500,"activity_id":103,` +
	`"foreignkey":"cust-1","identity":"{ID}@example.com"},` +
	`"journey_name":"business class search"}`

// bodyBuilder makes form bodies `data=<url-encoded JSON>` without encoding
// anything per post: the constant pieces are percent-encoded once, and the
// only variable part, prefix-counter, is escaped once (the prefix) or needs
// no escaping (the decimal digits). So building a post costs a few appends,
// and the load generator measures the server, not itself. For events alone
// it makes the bare JSON event, nothing escaped.
type bodyBuilder struct {
	contentType string
	head        string   // data= and the escaped {"<panel>":[
	pieces      []string // the escaped event template, split around its {ID} slots
	sep         string   // the escaped comma between events
	tail        string   // the escaped ]}
	id          string   // the escaped prefix and dash that start every id
	size        int      // capacity hint for one body of eventsPerPost events
}

func newBodyBuilder(panel, prefix string, eventsPerPost int, eventsAlone bool) *bodyBuilder {
	if eventsAlone {
		return &bodyBuilder{
			contentType: "application/json",
			pieces:      strings.Split(eventTemplate, "{ID}"),
			id:          prefix + "-",
			size:        len(eventTemplate) + 2*(len(prefix)+21),
		}
	}
	quotedPanel := strconv.Quote(panel)
	b := &bodyBuilder{
		contentType: "application/x-www-form-urlencoded",
		head:        "data=" + url.QueryEscape("{"+quotedPanel+":["),
		sep:         url.QueryEscape(","),
		tail:        url.QueryEscape("]}"),
		id:          url.QueryEscape(prefix + "-"),
	}
	for _, p := range strings.Split(eventTemplate, "{ID}") {
		b.pieces = append(b.pieces, url.QueryEscape(p))
	}
	perEvent := len(b.sep) + (len(b.pieces)-1)*(len(b.id)+20)
	for _, p := range b.pieces {
		perEvent += len(p)
	}
	b.size = len(b.head) + len(b.tail) + eventsPerPost*perEvent
	return b
}

// build returns a body of n events numbered first, first+1, ...
func (b *bodyBuilder) build(first uint64, n int) []byte {
	buf := make([]byte, 0, b.size)
	buf = append(buf, b.head...)
	for i := range n {
		if i > 0 {
			buf = append(buf, b.sep...)
		}
		for j, p := range b.pieces {
			if j > 0 {
				buf = append(buf, b.id...)
				buf = strconv.AppendUint(buf, first+uint64(i), 10)
			}
			buf = append(buf, p...)
		}
	}
	return append(buf, b.tail...)
}

// Post is one Netcore post of n unique events numbered from first, their
// ids starting with prefix: its content type and its body. For a post sent
// by itself, e.g. one of 100,000 events.
func Post(panel, prefix string, first uint64, n int) (contentType string, body []byte) {
	if panel == "" {
		panel = "product_search"
	}
	b := newBodyBuilder(panel, prefix, n, false)
	return b.contentType, b.build(first, n)
}

// Events writes n unique events numbered from first, their ids starting
// with prefix, one JSON object a line: each as Run sends it with
// EventsAlone. For a pipeline that reads events ready to deliver.
func Events(w io.Writer, prefix string, first uint64, n int) error {
	b := newBodyBuilder("", prefix, 1, true)
	bw := bufio.NewWriterSize(w, 1<<20)
	for i := range n {
		if _, err := bw.Write(append(b.build(first+uint64(i), 1), '\n')); err != nil {
			return err
		}
	}
	return bw.Flush()
}
