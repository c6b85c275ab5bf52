package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"
)

// replayed is what a replay delivered: each line and the metadata naming it.
type replayed struct {
	body, file, line string
}

// replay runs the netcore_archive input in the real Benthos engine and
// returns what it delivered once the stream ended by itself. failFirst
// fails the first delivery of each message, as a destination that is down
// for a moment would.
func replay(t *testing.T, dir, from, to string, failFirst bool) []replayed {
	got, failures := replayCounting(t, dir, from, to, failFirst)
	if failFirst && failures != len(got) {
		t.Fatalf("%d deliveries failed, want the first of each of the %d events", failures, len(got))
	}
	return got
}

func replayCounting(t *testing.T, dir, from, to string, failFirst bool) ([]replayed, int) {
	t.Helper()
	b := service.NewStreamBuilder()
	if err := b.SetLoggerYAML("level: none"); err != nil {
		t.Fatal(err)
	}
	if err := b.AddInputYAML(fmt.Sprintf("netcore_archive:\n  dir: %s\n  from: %s\n  to: %s\n", dir, from, to)); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []replayed
	failed := map[string]bool{}
	if err := b.AddConsumerFunc(func(_ context.Context, msg *service.Message) error {
		body, _ := msg.AsBytes()
		file, _ := msg.MetaGet(fileKey)
		line, _ := msg.MetaGet(lineKey)
		mu.Lock()
		defer mu.Unlock()
		if failFirst && !failed[string(body)] {
			failed[string(body)] = true
			return errors.New("destination down")
		}
		got = append(got, replayed{string(body), file, line})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := stream.Run(ctx); err != nil {
		t.Fatalf("the replay did not end by itself: %v", err)
	}
	return got, len(failed)
}

func bodies(r []replayed) string {
	var s []string
	for _, x := range r {
		s = append(s, x.body)
	}
	return strings.Join(s, "\n")
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
}

func TestReplayReadsTheHoursOfARangeAcrossDaysInOrder(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "2026-11-27", "22.jsonl"), "{\"h\":\"22 before\"}\n")
	writeFile(t, filepath.Join(dir, "2026-11-27", "23.jsonl"), "{\"h\":23,\"n\":1}\n{\"h\":23,\"n\":2}\n")
	// 00 has no file: a quiet hour.
	writeFile(t, filepath.Join(dir, "2026-11-28", "01.jsonl"), "{\"h\":1}\n")
	writeFile(t, filepath.Join(dir, "2026-11-28", "02.jsonl"), "{\"h\":\"2 after\"}\n")
	got := replay(t, dir, "2026-11-27T23:00:00Z", "2026-11-28T02:00:00Z", false)
	want := "{\"h\":23,\"n\":1}\n{\"h\":23,\"n\":2}\n{\"h\":1}"
	if bodies(got) != want {
		t.Fatalf("replayed\n%s\nwant\n%s", bodies(got), want)
	}
	if got[1].file != "2026-11-27/23.jsonl" || got[1].line != "2" || got[2].file != "2026-11-28/01.jsonl" || got[2].line != "1" {
		t.Errorf("metadata names the wrong lines: %+v", got)
	}
	// The same range written with an offset.
	if got := replay(t, dir, "2026-11-28T04:30:00+05:30", "2026-11-28T07:30:00+05:30", false); bodies(got) != want {
		t.Errorf("the same range with a +05:30 offset replayed\n%s", bodies(got))
	}
}

func TestReplayOfAnEmptyRangeEndsWithNothing(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "2026-11-28", "13.jsonl"), "{}\n")
	if got := replay(t, dir, "2026-11-28T13:00:00Z", "2026-11-28T13:00:00Z", false); len(got) != 0 {
		t.Errorf("from = to replayed %d events", len(got))
	}
	if got := replay(t, dir, "2026-11-28T10:00:00Z", "2026-11-28T13:00:00Z", false); len(got) != 0 {
		t.Errorf("hours without files replayed %d events", len(got))
	}
	if got := replay(t, filepath.Join(dir, "missing"), "2026-11-28T13:00:00Z", "2026-11-28T14:00:00Z", false); len(got) != 0 {
		t.Errorf("a missing archive replayed %d events", len(got))
	}
}

func TestReplaySendsWhatTheOutputArchivedExactly(t *testing.T) {
	dir := t.TempDir()
	events := []string{
		`{"id":12345678901234567890,"price":45999.50,"city":"Thane&Kalyan <x>","u":"\u00e9"}`,
		`{"n":2}`, `{"n":3}`,
	}
	plain := newTestOutput(t, "dir: "+dir)
	write(t, plain, event(events[0], "2026-11-28T13:05:00Z"))
	gz := newTestOutput(t, "dir: "+dir+"\ngzip: true") // gzip switched on within the hour
	write(t, gz, event(events[1], "2026-11-28T13:35:00Z"))
	write(t, gz, event(events[2], "2026-11-28T13:36:00Z"))
	got := replay(t, dir, "2026-11-28T13:00:00Z", "2026-11-28T14:00:00Z", false)
	if bodies(got) != strings.Join(events, "\n") {
		t.Errorf("replayed\n%s\nwant\n%s", bodies(got), strings.Join(events, "\n"))
	}
}

func TestReplaySkipsATornTail(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "2026-11-28", "13.jsonl"), "{\"n\":1}\n{\"n\":2}\n{\"n\":3,\"to")
	gz := newTestOutput(t, "dir: "+dir+"\ngzip: true")
	path := filepath.Join(dir, "2026-11-28", "14.jsonl.gz")
	write(t, gz, event(`{"n":4}`, "2026-11-28T14:00:00Z"))
	whole, _ := os.Stat(path)
	write(t, gz, event(`{"n":5}`, "2026-11-28T14:00:00Z"))
	tearOff(t, path, int(whole.Size()), func(n int) int { return n - 1 })
	got := replay(t, dir, "2026-11-28T13:00:00Z", "2026-11-28T15:00:00Z", false)
	if want := "{\"n\":1}\n{\"n\":2}\n{\"n\":4}"; bodies(got) != want {
		t.Errorf("replayed\n%s\nwant\n%s", bodies(got), want)
	}
}

func TestReplayRetriesWhatFailedBeforeEnding(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "2026-11-28", "13.jsonl"), "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n")
	got := replay(t, dir, "2026-11-28T13:00:00Z", "2026-11-28T14:00:00Z", true)
	if len(got) != 3 {
		t.Fatalf("delivered %d of 3 events after each failed once: %s", len(got), bodies(got))
	}
	for _, n := range []string{"1", "2", "3"} {
		if !strings.Contains(bodies(got), `{"n":`+n+`}`) {
			t.Errorf("event %s was not delivered", n)
		}
	}
}

func TestReplayRefusesARangeItCannotServeExactly(t *testing.T) {
	for _, c := range []struct{ from, to, says string }{
		{"2026-11-28T07:30:00Z", "2026-11-28T09:00:00Z", "use 2026-11-28T07:00:00Z or 2026-11-28T08:00:00Z"},
		{"2026-11-28T09:00:00Z", "2026-11-28T07:00:00Z", "before it starts"},
		{"yesterday", "2026-11-28T07:00:00Z", "not an RFC 3339 time"},
		{`""`, "2026-11-28T07:00:00Z", "from is empty"},
	} {
		conf, err := inputSpec().ParseYAML(fmt.Sprintf("dir: /tmp/x\nfrom: %s\nto: %s", c.from, c.to), nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = newInputFromConfig(conf, service.MockResources())
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("from %s to %s: error %v, want one saying %q", c.from, c.to, err, c.says)
		}
	}
}
