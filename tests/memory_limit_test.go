package tests

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/testkit"
)

// containerLimit is the memory limit the default settings are held to: a
// container of 512 MiB, as an operator would give a small receiver.
const containerLimit = 512 << 20

// bigPostEvents and bigEventPadding shape a post of about 9.7 MB as
// form-encoded body, 1,000 events of about 9.6 KB: the posts an outside
// test filled a 1 GiB queue with (111 of ~9.7 MB, 116,772 events), just
// under the default max_body_bytes of 10 MiB.
const (
	bigPostEvents   = 1000
	bigEventPadding = 9500
)

// bigPost is the form body of post n: every event unique, so that no repeat
// is removed and every event must arrive.
func bigPost(n int) string {
	padding := strings.Repeat("x", bigEventPadding)
	var b strings.Builder
	b.WriteString(`{"sms_clicks":[`)
	for i := 0; i < bigPostEvents; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"custom_params":{"channel":"sms","type":"click","note":"%s"},"event_params":{"foreignkey":"98%08d","linkid":%d}}`, padding, n, i)
	}
	b.WriteString(`]}`)
	return "data=" + url.QueryEscape(b.String())
}

// bigPosts is how many big posts arrive at once: 100, as in the outside
// test of ingest memory, and together about 960 MB, nearly the default
// queue of 1 GiB.
const bigPosts = 100

// storeBigPosts sends n big posts at once, each until it is stored, and
// stops t if any was not.
func storeBigPosts(t testing.TB, p *process, n int) {
	t.Helper()
	var wg sync.WaitGroup
	deadline := time.Now().Add(5 * time.Minute)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			postUntilStored(t, p.webhook, bigPost(i), deadline)
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// postUntilStored posts body until it is answered 200, as Netcore retries
// a failed webhook: after a 503 as Retry-After says, and a second after a
// connection closed before the answer (the receiver answers a post its
// budget cannot take at once, and closes rather than read a body it will
// not store). Any other answer, or none by deadline, fails t.
func postUntilStored(t testing.TB, target, body string, deadline time.Time) {
	for time.Now().Before(deadline) {
		resp, err := http.Post(target, "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		resp.Body.Close()
		switch resp.StatusCode {
		case http.StatusOK:
			return
		case http.StatusServiceUnavailable:
			wait, err := strconv.Atoi(resp.Header.Get("Retry-After"))
			if err != nil || wait < 1 {
				t.Errorf("503 with Retry-After %q, want a whole number of seconds", resp.Header.Get("Retry-After"))
				return
			}
			time.Sleep(time.Duration(wait) * time.Second)
		default:
			t.Errorf("a big post was answered %d", resp.StatusCode)
			return
		}
	}
	t.Error("a big post was not stored before the deadline")
}

// TestBigPostsInsideA512MiBContainerAreAllDelivered runs the default
// pipeline with its default settings inside a 512 MiB memory cgroup. First
// 100 posts of ~9.7 MB arrive at once while Meiro Events is down, filling
// the queue; then the receiver restarts on that full queue with Meiro Events
// up. Before memory was bounded in bytes the restart read 128 whole posts
// ahead and was killed (here after 46,000 of 100,000 events), and the same
// ingest held 725–917 MB where no limit made the kernel reclaim. The process
// must survive both, unkilled, and deliver every event.
func TestBigPostsInsideA512MiBContainerAreAllDelivered(t *testing.T) {
	limit := testkit.NewMemoryLimit(t, containerLimit)
	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	dir := t.TempDir()
	p := startProcess(t, options{env: m.env(), dir: dir, memory: limit})

	storeBigPosts(t, p, bigPosts)
	assertAliveWithinLimit(t, p, limit, "while 100 posts of ~9.7 MB were stored")
	// The premise: every event was acknowledged and waits in the queue.
	const events = bigPosts * bigPostEvents
	waitQueued(t, p, events)
	p.stop(t)

	m.setRespond(func([]byte) int { return http.StatusOK })
	p = startProcess(t, options{env: m.env(), dir: dir, memory: limit})
	waitFor(t, fmt.Sprintf("%d events delivered", events), 5*time.Minute, func() bool {
		select {
		case <-p.exited:
			t.Fatalf("netcore-connect died while delivering the full queue, %d of %d events delivered", m.receivedCount(), events)
		default:
		}
		return m.receivedCount() >= events
	})
	assertAliveWithinLimit(t, p, limit, "while a full queue of ~9.7 MB posts was delivered after a restart")
	waitQuiet(t, p, m)
	ids := map[string]bool{}
	eventID := regexp.MustCompile(`"event_id":"([0-9a-f]+)"`)
	for _, body := range m.received() {
		if id := eventID.FindSubmatch(body); id != nil {
			ids[string(id[1])] = true
		}
	}
	if len(ids) != events {
		t.Errorf("Meiro Events got %d distinct events of %d acknowledged (%d requests accepted)", len(ids), events, m.receivedCount())
	}
}

// assertAliveWithinLimit fails t if p has exited or the kernel killed a
// process in limit, and logs p's peak resident memory for the record.
func assertAliveWithinLimit(t *testing.T, p *process, limit *testkit.MemoryLimit, when string) {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("netcore-connect exited %s:\n%s", when, p.stderr.String())
	default:
	}
	kills, err := limit.OOMKills()
	if err != nil {
		t.Fatal(err)
	}
	if kills != 0 {
		t.Fatalf("%d out-of-memory kills in the %d MiB cgroup %s", kills, containerLimit>>20, when)
	}
	t.Logf("peak RSS %s: %d MiB (limit %d MiB)", when, peakRSSKiB(t, p.cmd.Process.Pid)>>10, containerLimit>>20)
}
