package netcorepost

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// parseTS must read exactly what time.ParseInLocation reads, and refuse
// exactly what it refuses: edge dates, leap years, both centuries, a zone
// with a summer time gap, and random digits.
func TestParseTSReadsAsTimeParseInLocation(t *testing.T) {
	zones := []string{"Asia/Kolkata", "UTC", "Europe/Prague"}
	cases := []string{"240229120000", "230229120000", "000229000000", "690101000000", "681231235959",
		"991231235959", "240230000000", "240431000000", "241301000000", "240001000000", "240100000000",
		"240101240000", "240101006000", "240101000060", "240331023000", "241027023000", "000000000000"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		cases = append(cases, fmt.Sprintf("%02d%02d%02d%02d%02d%02d", r.IntN(100), r.IntN(14), r.IntN(33), r.IntN(26), r.IntN(62), r.IntN(62)))
	}
	for _, zone := range zones {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		for _, ts := range cases {
			want, werr := time.ParseInLocation("060102150405", ts, loc)
			got, ok := parseTS([]byte(ts), loc)
			if ok != (werr == nil) || ok && !got.Equal(want) {
				t.Fatalf("%s in %s: parseTS %v %v, time.ParseInLocation %v %v", ts, zone, got, ok, want, werr)
			}
		}
	}
	if _, ok := parseTS([]byte("2403011015ab"), time.UTC); ok {
		t.Error("read a ts with letters in it")
	}
}

func TestQuoteNameQuotesAsEncodingJSON(t *testing.T) {
	for _, name := range []string{"product_search", "", "a b", `say "hi"`, `back\slash`, "<tag>", "a&b", "é", "tab\there", "\u2028"} {
		want, _ := json.Marshal(name)
		if got := quoteName(name); string(got) != string(want) {
			t.Errorf("quoteName(%q) = %s, want %s", name, got, want)
		}
	}
}

// newTestExploder is an Exploder with the defaults of netcore_explode.
func newTestExploder(tb testing.TB) *Exploder {
	tb.Helper()
	conf, err := service.NewConfigSpec().Fields(ExplodeFields(DefaultTimezone)...).ParseYAML(``, nil)
	if err != nil {
		tb.Fatal(err)
	}
	p, err := NewExploder(conf)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// explode is what netcore_explode does with a message: the post it carries,
// one message per event.
func explode(p *Exploder, msg *service.Message) (service.MessageBatch, error) {
	post, err := PostOf(msg)
	if err != nil {
		return nil, err
	}
	return p.ExplodePost(msg, post)
}

func meta(m *service.Message, key string) string {
	v, _ := m.MetaGet(key)
	return v
}
