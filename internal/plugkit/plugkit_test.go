package plugkit

import (
	"slices"
	"testing"

	"github.com/redpanda-data/benthos/v4/public/service"
)

func TestSplitListFlattensCommaSeparatedEntries(t *testing.T) {
	got := SplitList([]string{"nats://a:4222, nats://b:4222", "", " ,nats://c:4222,"})
	want := []string{"nats://a:4222", "nats://b:4222", "nats://c:4222"}
	if !slices.Equal(got, want) {
		t.Errorf("SplitList = %q, want %q", got, want)
	}
}

func TestWalkMetaWithPrefixKeepsOnlyThePrefix(t *testing.T) {
	msg := service.NewMessage(nil)
	msg.MetaSetMut("netcore_event_id", "e1")
	msg.MetaSetMut("netcore_panel", "p")
	msg.MetaSetMut("fallback_error", "x")
	got := map[string]string{}
	WalkMetaWithPrefix(msg, "netcore_", func(k, v string) { got[k] = v })
	if len(got) != 2 || got["netcore_event_id"] != "e1" || got["netcore_panel"] != "p" {
		t.Errorf("kept %v, want the two netcore_ keys", got)
	}
	all := 0
	WalkMetaWithPrefix(msg, "", func(string, string) { all++ })
	if all != 3 {
		t.Errorf("an empty prefix kept %d keys, want all 3", all)
	}
}
