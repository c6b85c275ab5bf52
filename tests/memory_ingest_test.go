package tests

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/bench/loadgen"
	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"
)

// bigForm is one realistic form body (events as Netcore posts them,
// percent-encoded: 1.6 times their JSON) split around the id that makes
// each post's events its own, so that a hundred posts of ~10 MB are sent
// from one copy of it.
type bigForm struct {
	parts  [][]byte // the body, split at every idSlot
	size   int64    // the length of every post made of it
	events int
}

// idSlot stands in the template for the id of a post (idDigits digits).
const (
	idSlot   = "IDSLOT"
	idDigits = len(idSlot)
)

func newBigForm(events int) *bigForm {
	_, body := loadgen.Post("", idSlot, 0, events)
	return &bigForm{parts: bytes.Split(body, []byte(idSlot)), size: int64(len(body)), events: events}
}

// reader is the body of post id: the template with id in every slot.
func (f *bigForm) reader(id int) io.Reader {
	slot := []byte(fmt.Sprintf("%0*d", idDigits, id))
	readers := make([]io.Reader, 0, 2*len(f.parts))
	for i, part := range f.parts {
		if i > 0 {
			readers = append(readers, bytes.NewReader(slot))
		}
		readers = append(readers, bytes.NewReader(part))
	}
	return io.MultiReader(readers...)
}

// postAsNetcore posts a body until it is answered 200, waiting Retry-After
// after each 503 as Netcore does. It returns the answers it had.
func postAsNetcore(target, contentType string, size int64, body func() io.Reader, giveUp time.Time) []int {
	var statuses []int
	for time.Now().Before(giveUp) {
		req, err := http.NewRequest(http.MethodPost, target, body())
		if err != nil {
			return append(statuses, 0)
		}
		req.ContentLength = size
		req.Header.Set("Content-Type", contentType)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			statuses = append(statuses, 0)
			time.Sleep(time.Second)
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode != http.StatusServiceUnavailable {
			return statuses
		}
		wait, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil {
			return append(statuses, -1) // a 503 without Retry-After
		}
		time.Sleep(time.Duration(wait) * time.Second)
	}
	return statuses
}

// TestBigPostsStayWithinTheirBudgetsInA512MiBContainer runs the default
// pipeline with its default settings inside a 512 MiB memory cgroup, as a
// container. First it posts 100 bodies of ~9.7 MB at once with Meiro Events
// down, retrying each 503 after its Retry-After as Netcore does, while small
// posts keep arriving. What a post costs besides its body (the decoded data,
// the record written to the queue) once took the peak RSS to 725–917 MB
// against the 256 MiB budget. The peak must stay within the base, the budget
// and a margin for the connections and the runtime; every post answered 200
// has its events in the queue; no small post is refused, since a share of
// the budget is theirs alone. Then it restarts on the queue those posts
// filled, with Meiro Events up: before the read path was bounded in bytes,
// the queue read 128 whole posts ahead and the kernel killed the process
// (in this test, after 46,000 of 100,000 events). Every event must arrive,
// and neither process may be killed.
func TestBigPostsStayWithinTheirBudgetsInA512MiBContainer(t *testing.T) {
	const (
		bigPosts    = 100
		eventsInBig = 12_900 // 9.7 MB of form
		budget      = 256 << 20
		// Besides the budget: 100 connections and their buffers, the
		// runtime's own, and the garbage collector's lag: 64 MiB.
		margin = 64 << 20
	)
	limit := testkit.NewMemoryLimit(t, containerLimit)
	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	dir := t.TempDir()
	p := startProcess(t, options{env: m.env(), dir: dir, memory: limit})
	base := peakRSSKiB(t, p.cmd.Process.Pid)
	form := newBigForm(eventsInBig)
	t.Logf("big posts of %d bytes, %d events each", form.size, form.events)

	start := time.Now()
	giveUp := start.Add(4 * time.Minute)
	var (
		mu          sync.Mutex
		bigStatuses = map[int]int{}
		stored      atomic.Int64 // events of posts answered 200
		wg          sync.WaitGroup
	)
	for i := range bigPosts {
		wg.Go(func() {
			statuses := postAsNetcore(p.webhook, "application/x-www-form-urlencoded", form.size,
				func() io.Reader { return form.reader(i) }, giveUp)
			if statuses[len(statuses)-1] == http.StatusOK {
				stored.Add(int64(form.events))
			}
			mu.Lock()
			for _, s := range statuses {
				bigStatuses[s]++
			}
			mu.Unlock()
		})
	}
	bigDone := make(chan struct{})
	go func() { wg.Wait(); close(bigDone) }()

	small := postSmallUntil(t, p.webhook, bigDone)
	elapsed := time.Since(start)
	peak := peakRSSKiB(t, p.cmd.Process.Pid)
	t.Logf("base RSS %d MiB, peak %d MiB; big posts' answers %v in %s; %s",
		base>>10, peak>>10, bigStatuses, elapsed.Round(time.Millisecond), runtimeCost(t, p))
	t.Logf("small posts: %d, answers %v, latency p50 %s p99 %s max %s", len(small.took), small.statuses,
		small.percentile(0.50), small.percentile(0.99), small.percentile(1))

	// A 0 is a connection closed before the answer, which the sender
	// retries; -1 a 503 without Retry-After, which it could not.
	if bigStatuses[http.StatusOK] != bigPosts || bigStatuses[-1] != 0 {
		t.Fatalf("big posts were answered %v: want all %d stored in the end, each 503 with Retry-After", bigStatuses, bigPosts)
	}
	if bigStatuses[http.StatusServiceUnavailable] == 0 {
		t.Fatalf("big posts were answered %v: the premise (the budget full while small ones arrive) did not happen", bigStatuses)
	}
	waitQueued(t, p, int(stored.Load())+small.storedEvents)
	if limit := base + (budget+margin)>>10; peak > limit {
		t.Errorf("peak RSS %d MiB is over the base, the %d MiB budget and %d MiB for the rest (%d MiB)", peak>>10, budget>>20, margin>>20, limit>>10)
	}
	if n := small.statuses[http.StatusOK]; n != len(small.took) {
		t.Errorf("%d of %d small posts were answered 200 (%v): a small post must never be refused for the big ones", n, len(small.took), small.statuses)
	}
	assertAliveWithinLimit(t, p, limit, "while 100 posts of ~9.7 MB were stored")
	p.stop(t)

	if peak := deliverAfterRestart(t, m, dir, limit, int(stored.Load())+small.storedEvents); peak > restartRSSLimit {
		t.Errorf("peak RSS %d MiB after a restart on the big posts, over the %d MiB the defaults keep to", peak>>10, restartRSSLimit>>10)
	}
}

// smallPosts is what happened to the small posts sent during a test.
type smallPosts struct {
	took         []time.Duration
	statuses     map[int]int
	storedEvents int
}

func (s smallPosts) percentile(q float64) time.Duration {
	if len(s.took) == 0 {
		return 0
	}
	sorted := slices.Clone(s.took)
	slices.Sort(sorted)
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// postSmallUntil posts a one-event form every 50 ms, each with events of its
// own, from two senders, until done is closed; half of them chunked.
func postSmallUntil(t *testing.T, target string, done <-chan struct{}) smallPosts {
	t.Helper()
	var (
		mu  sync.Mutex
		out = smallPosts{statuses: map[int]int{}}
		wg  sync.WaitGroup
		n   atomic.Int64
	)
	for sender := range 2 {
		wg.Go(func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
				}
				i := n.Add(1)
				contentType, body := loadgen.Post("", fmt.Sprintf("small-%d", i), 0, 1)
				var r io.Reader = bytes.NewReader(body)
				if sender == 1 {
					r = io.MultiReader(r) // no length known: sent chunked
				}
				req := newPost(t, target, contentType, r)
				began := time.Now()
				resp, err := http.DefaultClient.Do(req)
				status := 0
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				took := time.Since(began)
				mu.Lock()
				out.took = append(out.took, took)
				out.statuses[status]++
				if status == http.StatusOK {
					out.storedEvents++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return out
}
