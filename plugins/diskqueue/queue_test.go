package diskqueue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/claim"
	"github.com/redpanda-data/benthos/v4/public/service"
	bolt "go.etcd.io/bbolt"
)

func testConfig(t *testing.T) queueConfig {
	t.Helper()
	return queueConfig{
		path:         filepath.Join(t.TempDir(), "queue", "events.db"),
		maxBytes:     1 << 20,
		maxEvents:    1000,
		dedupeWindow: time.Minute,
		dedupeMaxIDs: 1000,
		retryInitial: 20 * time.Millisecond,
		retryMax:     80 * time.Millisecond,
		checkOnStart: true,
		readMemory:   defaultReadMemory,
	}
}

func open(t *testing.T, c queueConfig) *queue {
	t.Helper()
	q, err := openQueue(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.close(context.Background()) })
	return q
}

func record(t *testing.T, body string, meta ...string) []byte {
	t.Helper()
	msg := service.NewMessage([]byte(body))
	for i := 0; i+1 < len(meta); i += 2 {
		msg.MetaSetMut(meta[i], meta[i+1])
	}
	rec, err := encodeRecord(msg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// store puts bodies (ids as given, "" for none) and waits until they are
// on disk.
func store(t *testing.T, q *queue, bodies []string, ids []string) error {
	t.Helper()
	_, err := storeWithRepeats(t, q, bodies, ids)
	return err
}

// storeWithRepeats stores as store does, and returns which records the
// queue did not store again because they were repeats.
func storeWithRepeats(t *testing.T, q *queue, bodies []string, ids []string) ([]int, error) {
	t.Helper()
	recs := make([][]byte, len(bodies))
	for i, b := range bodies {
		recs[i] = record(t, b)
	}
	if ids == nil {
		ids = make([]string, len(bodies))
	}
	type result struct {
		err     error
		repeats []int
	}
	done := make(chan result, 1)
	if err := q.put(recs, ids, nil, func(err error, repeats []int) { done <- result{err, repeats} }); err != nil {
		return nil, err
	}
	select {
	case r := <-done:
		return r.repeats, r.err
	case <-time.After(5 * time.Second):
		t.Fatal("put never acknowledged")
		return nil, nil
	}
}

func take(t *testing.T, q *queue) (*lease, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	l, err := q.next(ctx)
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	b, _ := l.msg.AsBytes()
	return l, string(b)
}

func TestQueueIsFIFOAndKeepsMetadata(t *testing.T) {
	q := open(t, testConfig(t))
	recs := [][]byte{record(t, `{"a":1}`, "netcore_panel", "p", "netcore_event_id", "x"), record(t, `{"b":2}`)}
	done := make(chan error, 1)
	if err := q.put(recs, []string{"", ""}, nil, func(err error, _ []int) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	l, body := take(t, q)
	if body != `{"a":1}` {
		t.Fatalf("first out %s", body)
	}
	if v, _ := l.msg.MetaGet("netcore_panel"); v != "p" {
		t.Errorf("metadata netcore_panel %q, want p", v)
	}
	if _, body := take(t, q); body != `{"b":2}` {
		t.Errorf("second out %s", body)
	}
}

func TestQueueSurvivesReopen(t *testing.T) {
	c := testConfig(t)
	q, err := openQueue(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := store(t, q, []string{"one", "two", "three"}, nil); err != nil {
		t.Fatal(err)
	}
	l, _ := take(t, q)
	q.ack(l, nil) // "one" delivered
	if err := q.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := q.close(context.Background()); err != nil {
		t.Errorf("second close: %v", err)
	}

	q = open(t, c)
	if events, _ := q.stats(); events != 2 {
		t.Errorf("%d events after reopen, want 2", events)
	}
	for _, want := range []string{"two", "three"} {
		if _, body := take(t, q); body != want {
			t.Errorf("got %s, want %s", body, want)
		}
	}
}

// Deletes of delivered records are committed lazily, but they are
// committed: the file does not keep delivered events while the queue idles.
func TestQueueDeletesDeliveredRecordsWhileIdle(t *testing.T) {
	q := open(t, testConfig(t))
	if err := store(t, q, []string{"one", "two"}, nil); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		l, _ := take(t, q)
		q.ack(l, nil)
	}
	deadline := time.Now().Add(3 * time.Second)
	for {
		var inFile int
		err := q.store.db.View(func(tx *bolt.Tx) error {
			inFile = tx.Bucket(bucketEvents).Stats().KeyN
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if inFile == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d delivered records still in the file after 3s", inFile)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestQueueRedeliversNackedRecordsAfterBackoff(t *testing.T) {
	q := open(t, testConfig(t))
	if err := store(t, q, []string{"flaky"}, nil); err != nil {
		t.Fatal(err)
	}
	var gaps []time.Duration
	var due time.Time // when the attempt under way was due; zero for the first
	last := time.Now()
	for i, backoff := range []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 80 * time.Millisecond} {
		l, body := take(t, q)
		if body != "flaky" {
			t.Fatalf("got %s", body)
		}
		if time.Now().Before(due) {
			t.Errorf("attempt %d handed out before it was due at %s", i, due)
		}
		gaps = append(gaps, time.Since(last))
		last = time.Now()
		due = q.ack(l, errors.New("meiro down"))
		// The upper bound: the attempt is due its backoff after the
		// failure, read from the clock before and after ack, never later;
		// next hands it out once due (the wait past that is the
		// scheduler's, not the queue's).
		if after := time.Now(); due.Before(last.Add(backoff)) || due.After(after.Add(backoff)) {
			t.Errorf("attempt %d failed between %s and %s, due again at %s: want its backoff of %s after the failure", i, last, after, due, backoff)
		}
	}
	// 20ms, 40ms, then capped at 80ms: never immediately, never longer than the cap by much.
	for i, want := range []time.Duration{0, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond} {
		if gaps[i] < want {
			t.Errorf("attempt %d came after %s, before its backoff of %s", i, gaps[i], want)
		}
	}
	if events, _ := q.stats(); events != 1 {
		t.Errorf("a nacked record must stay: %d events", events)
	}
}

func TestQueueRefusesWhenFull(t *testing.T) {
	c := testConfig(t)
	c.maxEvents = 3
	q := open(t, c)
	if err := store(t, q, []string{"1", "2", "3"}, nil); err != nil {
		t.Fatal(err)
	}
	err := store(t, q, []string{"4"}, nil)
	if !errors.Is(err, ErrFull) {
		t.Fatalf("got %v, want ErrFull", err)
	}
	l, _ := take(t, q)
	q.ack(l, nil)
	if err := store(t, q, []string{"4"}, nil); err != nil {
		t.Errorf("after a delivery there is room again: %v", err)
	}

	c = testConfig(t)
	c.maxBytes = 100
	q = open(t, c)
	if err := store(t, q, []string{strings.Repeat("x", 200)}, nil); !errors.Is(err, ErrFull) {
		t.Errorf("over max_bytes: got %v, want ErrFull", err)
	}
}

func TestQueueStoresRepeatsOnce(t *testing.T) {
	c := testConfig(t)
	q := open(t, c)
	if err := store(t, q, []string{"a", "b"}, []string{"id-a", "id-b"}); err != nil {
		t.Fatal(err)
	}
	repeats, err := storeWithRepeats(t, q, []string{"a", "b", "c"}, []string{"id-a", "id-b", "id-c"})
	if err != nil {
		t.Fatal(err)
	}
	deduped := len(repeats)
	if len(repeats) == 2 && (repeats[0] != 0 || repeats[1] != 1) {
		t.Errorf("repeats %v, want the first two records of the second post", repeats)
	}
	if events, _ := q.stats(); events != 3 || deduped != 2 {
		t.Errorf("%d events stored, %d repeats, want 3 and 2", events, deduped)
	}
	// Delivered ids are still remembered within the window, across a restart.
	for range 3 {
		l, _ := take(t, q)
		q.ack(l, nil)
	}
	if err := q.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	q = open(t, c)
	if err := store(t, q, []string{"a"}, []string{"id-a"}); err != nil {
		t.Fatal(err)
	}
	if events, _ := q.stats(); events != 0 {
		t.Errorf("a repeat after a restart was stored: %d events", events)
	}
}

func TestQueueForgetsIDsAfterTheWindow(t *testing.T) {
	c := testConfig(t)
	c.dedupeWindow = time.Second // the shortest: ids are remembered to the second
	q := open(t, c)
	if err := store(t, q, []string{"a"}, []string{"id-a"}); err != nil {
		t.Fatal(err)
	}
	// Past the window and the rest of the second the id was stored in,
	// whether or not a sweep ran.
	time.Sleep(2100 * time.Millisecond)
	if err := store(t, q, []string{"a"}, []string{"id-a"}); err != nil {
		t.Fatal(err)
	}
	if events, _ := q.stats(); events != 2 {
		t.Errorf("%d events, want the repeat stored again after the window", events)
	}
}

func TestQueueMovesDamagedRecordsAside(t *testing.T) {
	c := testConfig(t)
	var damaged []uint64
	c.onDamaged = func(seq uint64, err error) { damaged = append(damaged, seq) }
	q, err := openQueue(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := store(t, q, []string{"good-1", "bad", "good-2"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := q.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Damage the second record in place, through bbolt, as a bad sector would.
	db, err := bolt.Open(c.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketEvents)
		first, _ := b.Cursor().First()
		k, v := b.Cursor().Seek(seqKey(binaryNext(first)))
		bad := append([]byte(nil), v...)
		bad[len(bad)-1] ^= 0xff
		return b.Put(k, bad)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	q = open(t, c)
	for _, want := range []string{"good-1", "good-2"} {
		l, body := take(t, q)
		if body != want {
			t.Fatalf("got %q, want %q", body, want)
		}
		q.ack(l, nil)
	}
	if len(damaged) != 1 {
		t.Fatalf("damaged reported %v, want one record", damaged)
	}
	if events, _ := q.stats(); events != 0 {
		t.Errorf("%d events left", events)
	}
	if err := q.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	db, err = bolt.Open(c.path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		if n := tx.Bucket(bucketDamaged).Stats().KeyN; n != 1 {
			t.Errorf("%d records kept in the damaged bucket, want 1", n)
		}
		return nil
	})
}

// waitUntilParkedIn waits until a goroutine is blocked in fn (as its stack
// names it): the premise of a test of what wakes it.
func waitUntilParkedIn(t *testing.T, fn string) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for deadline := time.Now().Add(5 * time.Second); ; {
		if strings.Contains(string(buf[:runtime.Stack(buf, true)]), fn) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no goroutine ever waited in %s", fn)
		}
		runtime.Gosched()
	}
}

func binaryNext(k []byte) uint64 {
	var n uint64
	for _, b := range k {
		n = n<<8 | uint64(b)
	}
	return n + 1
}

func TestQueueFileThatCannotBeOpenedIsNamed(t *testing.T) {
	c := testConfig(t)
	if err := os.MkdirAll(filepath.Dir(c.path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.path, []byte(strings.Repeat("garbage!", 2048)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := openQueue(c)
	if err == nil || !strings.Contains(err.Error(), c.path) {
		t.Errorf("got %v, want an error naming %s", err, c.path)
	}
}

func TestQueueFileInUseIsRefused(t *testing.T) {
	c := testConfig(t)
	open(t, c)
	_, err := openQueue(c)
	if err == nil || !strings.Contains(err.Error(), "another netcore-connect") {
		t.Errorf("got %v, want a refusal saying the file is in use", err)
	}
}

func TestQueueEndReadsAndCloseWhileWaiting(t *testing.T) {
	q := open(t, testConfig(t))
	got := make(chan error, 1)
	go func() {
		_, err := q.next(context.Background())
		got <- err
	}()
	waitUntilParkedIn(t, "(*queue).waitForWork")
	q.endReads()
	select {
	case err := <-got:
		if !errors.Is(err, errClosed) {
			t.Errorf("got %v, want errClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("next kept waiting after endReads")
	}
	if err := store(t, q, []string{"late"}, nil); err != nil {
		t.Errorf("writes still stored after endReads: %v", err)
	}
	if err := q.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := store(t, q, []string{"after close"}, nil); !errors.Is(err, errClosed) {
		t.Errorf("write after close: got %v, want errClosed", err)
	}
}

func TestRecordChecksum(t *testing.T) {
	rec := record(t, `{"n":12345678901234567890123}`, "k", "v")
	msg, err := decodeRecord(append([]byte(nil), rec...))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := msg.AsBytes(); string(b) != `{"n":12345678901234567890123}` {
		t.Errorf("body %s", b)
	}
	for i := range rec {
		bad := append([]byte(nil), rec...)
		bad[i] ^= 0x01
		if _, err := decodeRecord(bad); err == nil {
			t.Fatalf("a flipped bit at byte %d went unnoticed", i)
		}
	}
	if _, err := decodeRecord(rec[:3]); err == nil {
		t.Error("a truncated record went unnoticed")
	}
}

func TestQueueProbesOneAtATimeWhileDeliveriesFail(t *testing.T) {
	c := testConfig(t)
	c.retryInitial, c.retryMax = 200*time.Millisecond, 800*time.Millisecond
	q := open(t, c)
	// An outage: every delivery of a full round fails, outageFailures in a row.
	bodies := make([]string, outageFailures+4)
	for i := range bodies {
		bodies[i] = fmt.Sprint(i)
	}
	if err := store(t, q, bodies, nil); err != nil {
		t.Fatal(err)
	}
	var leases []*lease
	for range outageFailures {
		l, _ := take(t, q)
		leases = append(leases, l)
	}
	for _, l := range leases {
		q.ack(l, errors.New("503"))
	}
	none := func(within time.Duration) bool {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		l, err := q.next(ctx)
		if err == nil {
			q.ack(l, errors.New("unexpected lease"))
		}
		return err != nil
	}
	if !none(100 * time.Millisecond) {
		t.Fatal("a record was handed out during the pause after a failed round")
	}
	probe, _ := take(t, q)
	if !none(300 * time.Millisecond) {
		t.Fatal("a second record was handed out while a probe was out")
	}
	q.ack(probe, nil) // the destination is back
	start := time.Now()
	for range len(bodies) - 1 {
		l, _ := take(t, q)
		q.ack(l, nil)
	}
	if d := time.Since(start); d >= c.retryInitial {
		t.Errorf("after a successful probe the backlog took %s to come, want at once (before any retry was due)", d)
	}
	if events, _ := q.stats(); events != 0 {
		t.Errorf("%d events left", events)
	}
}

// With 30% of deliveries failing (a Meiro Events behind a load balancer with
// one bad node of three), the queue keeps its window wide and never falls
// back to one event at a time; the failed events come again after their
// backoff, and every event is delivered.
func TestQueueKeepsDeliveringWhenSomeDeliveriesFail(t *testing.T) {
	const events, consumers = 600, 64
	c := testConfig(t)
	c.retryInitial, c.retryMax = 5*time.Millisecond, 20*time.Millisecond
	q := open(t, c)
	for i := 0; i < events; i += 10 {
		bodies := make([]string, 10)
		for j := range bodies {
			bodies[j] = fmt.Sprint(i + j)
		}
		if err := store(t, q, bodies, nil); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	attempts, delivered, narrowest, probed := 0, map[string]bool{}, float64(maxWindow), false
	var wg sync.WaitGroup
	for range consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				l, err := q.next(ctx)
				cancel()
				if err != nil {
					return // drained
				}
				body, _ := l.msg.AsBytes()
				mu.Lock()
				attempts++
				fail := attempts%10 < 3 // 3 requests of every 10 fail
				if !fail {
					delivered[string(body)] = true
				}
				mu.Unlock()
				var ackErr error
				if fail {
					ackErr = errors.New("500 from one bad node")
				}
				q.ack(l, ackErr)
				q.mu.Lock()
				narrowest, probed = min(narrowest, q.sched.window.size), probed || q.sched.window.probing()
				q.mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(delivered) != events {
		t.Fatalf("%d of %d events delivered", len(delivered), events)
	}
	if probed || narrowest < consumers {
		t.Errorf("with 30%% failures the queue probed (%v) or narrowed its window to %.0f, below the %d consumers", probed, narrowest, consumers)
	}
	t.Logf("%d attempts for %d events; narrowest window %.0f", attempts, events, narrowest)
}

// An event that keeps failing waits for its own backoff while others
// succeed: a success does not make it due again (only the end of an outage
// does). The backoff is an hour, so that the others are handed out before
// it whatever the machine's speed; the schedule is then asked with the
// clock at the poison's due time, as it would be an hour later.
func TestQueueKeepsBackoffOfAFailingEventWhileOthersSucceed(t *testing.T) {
	c := testConfig(t)
	c.retryInitial, c.retryMax = time.Hour, 2*time.Hour
	q := open(t, c)
	if err := store(t, q, []string{"poison", "ok-1", "ok-2", "ok-3"}, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	poison, _ := take(t, q)
	ok1, _ := take(t, q)
	retryAt := q.ack(poison, errors.New("500"))
	q.ack(ok1, nil) // deliveries work: no probing, no pause
	for _, want := range []string{"ok-2", "ok-3"} {
		l, body := take(t, q)
		if body != want {
			t.Fatalf("got %q after %s, want %s at once", body, time.Since(start), want)
		}
		q.ack(l, nil)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, _, ok := q.sched.dueRetry(retryAt.Add(-time.Nanosecond)); ok || retryAt.Sub(start) < c.retryInitial {
		t.Errorf("the poison is due at %s, %s after the start: want it only after its own backoff of %s", retryAt, retryAt.Sub(start), c.retryInitial)
	}
	if r, _, ok := q.sched.dueRetry(retryAt); !ok || r.seq != poison.seq {
		t.Errorf("at its due time the schedule hands out %+v (%t), want poison (record %d) after its own backoff", r, ok, poison.seq)
	}
}

// A record that cannot be read from the file was not delivered: it is
// tried again after its backoff, and the delivery window does not count it
// as a failed delivery (it would narrow, and disk errors in a row would
// look like an outage of the destination). The file is closed under the
// queue to make the read fail: bbolt's reads fail only on a file they
// cannot use.
func TestQueueRetriesAnUnreadableRecordWithoutTellingTheWindow(t *testing.T) {
	q := open(t, testConfig(t))
	if err := store(t, q, []string{"unread"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := q.store.db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.next(context.Background()); err == nil {
		t.Fatal("next read a record from a closed file")
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if w := q.sched.window; w != newDeliveryWindow() {
		t.Errorf("the window learnt of the read error: size %.0f, %d failures in a row, probing %t; want it untouched", w.size, w.inARow, w.probing())
	}
	if q.sched.leased != 0 {
		t.Errorf("%d leases still out after the read error", q.sched.leased)
	}
	if len(q.sched.retries) != 1 || !q.sched.retries[0].due.After(time.Now()) {
		t.Fatalf("retries %v; want the unread record waiting for its backoff", q.sched.retries)
	}
}

// A put whose input gave up on it before its commit began is failed and
// leaves nothing in the queue; one still waited for has its claim taken by
// the commit, so that its input can no longer give up on it, and is stored.
func TestQueueStoresNothingOfAnAbandonedPut(t *testing.T) {
	q := open(t, testConfig(t))
	_, gaveUp := claim.New(context.Background())
	_, waited := claim.New(context.Background())
	if !gaveUp.Abandon() {
		t.Fatal("abandoning a fresh claim failed")
	}
	done := make(chan error, 2)
	for _, c := range []*claim.Claim{gaveUp, waited} {
		if err := q.put([][]byte{record(t, "x")}, []string{""}, []*claim.Claim{c}, func(err error, _ []int) { done <- err }); err != nil {
			t.Fatal(err)
		}
	}
	var errs []error
	for range 2 {
		select {
		case err := <-done:
			errs = append(errs, err)
		case <-time.After(5 * time.Second):
			t.Fatal("a put was never acknowledged")
		}
	}
	if !errors.Is(errs[0], claim.ErrAbandoned) && !errors.Is(errs[1], claim.ErrAbandoned) {
		t.Errorf("no put failed as abandoned: %v", errs)
	}
	if waited.Abandon() {
		t.Error("the claim of the stored put could still be abandoned after its commit")
	}
	if events, _ := q.stats(); events != 1 {
		t.Errorf("%d events waiting, want 1 (the put still waited for)", events)
	}
}

// A put holding several posts (a batching stage put them together) is
// stored only if every post's input still waits: one abandoned post fails
// the whole put, and nothing of it is stored.
func TestQueueStoresNothingOfAPutWithOneAbandonedPost(t *testing.T) {
	q := open(t, testConfig(t))
	_, waited := claim.New(context.Background())
	_, gaveUp := claim.New(context.Background())
	gaveUp.Abandon()
	done := make(chan error, 1)
	recs := [][]byte{record(t, "of the post still waited for"), record(t, "of the post given up")}
	if err := q.put(recs, []string{"", ""}, []*claim.Claim{waited, gaveUp}, func(err error, _ []int) { done <- err }); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, claim.ErrAbandoned) {
			t.Errorf("the put ended with %v, want it failed as abandoned", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the put was never acknowledged")
	}
	if events, _ := q.stats(); events != 0 {
		t.Errorf("%d events waiting, want none", events)
	}
}
