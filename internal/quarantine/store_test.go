package quarantine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func header(client, id string, at time.Time, panels map[string]int) Header {
	n := 0
	for _, c := range panels {
		n += c
	}
	return Header{Client: client, RequestID: id, ReceivedAt: at, Events: n, Panels: panels}
}

func open(t *testing.T, dir string, limits Limits) *Store {
	t.Helper()
	s, err := Open(dir, limits)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var roomy = Limits{MaxBytes: 1 << 20, MaxPostsPerClient: 100}

// A kept post is read back byte for byte, listed by address beside the
// owner (no lock taken), and found again by the next owner.
func TestKeptPostsAreListedAndReadBack(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, roomy)
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	data := []byte(`{"email_open": [ {"a":1, "p":"+1 %20"} ],"sms":[{}]}`)
	if err := s.Keep(header("2001:db8::1", "r1", t0, map[string]int{"email_open": 1, "sms": 1}), data); err != nil {
		t.Fatal(err)
	}
	if err := s.Keep(header("2001:db8::1", "r2", t0.Add(time.Minute), map[string]int{"sms": 3}), []byte(`{"sms":[{},{},{}]}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.Keep(header("203.0.113.7", "r3", t0.Add(2*time.Minute), map[string]int{"p": 1}), []byte(`{"p":[{}]}`)); err != nil {
		t.Fatal(err)
	}
	listed, err := List(dir)
	if err != nil || len(listed) != 2 {
		t.Fatalf("List beside the owner: %v %+v", err, listed)
	}
	v6 := listed[1]
	if v6.Address != "2001:db8::1" || v6.Posts != 2 || v6.Events != 5 || v6.Panels["sms"] != 4 || !v6.First.Equal(t0) || !v6.Last.Equal(t0.Add(time.Minute)) {
		t.Errorf("listed %+v, want 2 posts of 5 events from 2001:db8::1, first and last as received", v6)
	}
	if listed[0].Address != "203.0.113.7" {
		t.Errorf("the newest sender is not listed first: %+v", listed)
	}
	paths, err := s.Posts("2001:db8::1")
	if err != nil || len(paths) != 2 {
		t.Fatalf("Posts: %v %v", err, paths)
	}
	h, got, err := ReadPost(paths[0])
	if err != nil || string(got) != string(data) || h.RequestID != "r1" {
		t.Errorf("read back %q (%+v, %v), want the post as kept, oldest first", got, h, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again := open(t, dir, roomy)
	defer again.Close()
	if c := again.Clients(); len(c) != 2 || again.Bytes() == 0 || again.Bytes() != s.Bytes() {
		t.Errorf("reopened: %+v, %d bytes (was %d)", c, again.Bytes(), s.Bytes())
	}
}

// One process owns the folder; the commands can tell.
func TestOneOwnerAtATime(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, roomy)
	if _, err := Open(dir, roomy); !errors.Is(err, ErrOwned) {
		t.Errorf("a second Open: %v, want ErrOwned", err)
	}
	if !Owned(dir) {
		t.Error("Owned is false while a store is open")
	}
	s.Close()
	if Owned(dir) {
		t.Error("Owned is true once the store is closed")
	}
}

// Past either bound, Keep refuses with ErrFull and keeps nothing; room made
// by Remove is room again.
func TestBoundsInBytesAndPostsPerAddress(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Limits{MaxBytes: 10_000, MaxPostsPerClient: 2})
	defer s.Close()
	at := time.Now()
	small := []byte(`{"p":[{}]}`)
	for i, id := range []string{"a", "b"} {
		if err := s.Keep(header("192.0.2.1", id, at.Add(time.Duration(i)), map[string]int{"p": 1}), small); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Keep(header("192.0.2.1", "c", at.Add(2), map[string]int{"p": 1}), small); !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "2 posts") {
		t.Errorf("a third post from one address: %v, want ErrFull naming its 2 posts", err)
	}
	big := []byte(`{"p":[{"x":"` + strings.Repeat("x", 9800) + `"}]}`)
	if err := s.Keep(header("192.0.2.2", "d", at, map[string]int{"p": 1}), big); !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "10000") {
		t.Errorf("a post past the bytes: %v, want ErrFull naming the bound", err)
	}
	if c := s.Clients(); len(c) != 1 || c[0].Posts != 2 {
		t.Errorf("held %+v after refusals, want the 2 posts kept before", c)
	}
	paths, _ := s.Posts("192.0.2.1")
	if _, err := s.Remove(paths[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Keep(header("192.0.2.1", "c", at.Add(2), map[string]int{"p": 1}), small); err != nil {
		t.Errorf("a post once room was made: %v", err)
	}
}

// A file a crash left half written was never answered 200: the next owner
// removes it, and List never counts it.
func TestHalfWrittenPostsAreNotPosts(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, roomy)
	if err := s.Keep(header("192.0.2.1", "a", time.Now(), map[string]int{"p": 1}), []byte(`{"p":[{}]}`)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	torn := filepath.Join(dir, "192.0.2.1", "9999999999999999999-b.post.tmp")
	if err := os.WriteFile(torn, []byte(`{"client_ip":"192.0.2.1"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := List(dir); err != nil || len(c) != 1 || c[0].Posts != 1 {
		t.Errorf("List with a half-written file: %v %+v, want the 1 whole post", err, c)
	}
	s = open(t, dir, roomy)
	defer s.Close()
	if _, err := os.Stat(torn); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the half-written file is still there after Open: %v", err)
	}
}

// Drop removes an address's posts and says how many; others stay.
func TestDropTakesOneAddress(t *testing.T) {
	s := open(t, t.TempDir(), roomy)
	defer s.Close()
	for i, client := range []string{"192.0.2.1", "192.0.2.1", "192.0.2.9"} {
		if err := s.Keep(header(client, string(rune('a'+i)), time.Now(), map[string]int{"p": 2}), []byte(`{"p":[{},{}]}`)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := s.Drop(context.Background(), "192.0.2.1")
	if err != nil || res.Posts != 2 || res.Events != 4 {
		t.Errorf("Drop: %+v %v, want 2 posts of 4 events", res, err)
	}
	if c := s.Clients(); len(c) != 1 || c[0].Address != "192.0.2.9" {
		t.Errorf("left %+v, want 192.0.2.9 alone", c)
	}
}

// A command's request reaches the owner, whose answer reaches the command;
// a request that is not one is removed and named.
func TestRequestsGoToTheOwnerAndBack(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, roomy)
	defer s.Close()
	done := make(chan Result, 1)
	go func() {
		res, err := Ask(context.Background(), dir, Request{Op: OpRelease, Client: "2001:db8::1"})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	var reqs []Request
	for deadline := time.Now().Add(10 * time.Second); len(reqs) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		reqs, _ = s.Requests()
	}
	if len(reqs) != 1 || reqs[0] != (Request{Op: OpRelease, Client: "2001:db8::1"}) {
		t.Fatalf("requests seen: %+v", reqs)
	}
	if err := s.Answer(reqs[0], Result{Op: OpRelease, Client: "2001:db8::1", Posts: 3, Events: 7}); err != nil {
		t.Fatal(err)
	}
	if res := <-done; res.Posts != 3 || res.Events != 7 {
		t.Errorf("the command got %+v", res)
	}
	if reqs, err := s.Requests(); len(reqs) != 0 || err != nil {
		t.Errorf("after the answer: %+v %v, want no request", reqs, err)
	}
	bad := filepath.Join(dir, requestsName, "release-x.request")
	if err := os.WriteFile(bad, []byte(`{"op":"release","client":"192.0.2.1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if reqs, err := s.Requests(); len(reqs) != 0 || err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("a request under another name: %+v %v, want it removed and named", reqs, err)
	}
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Error("the bad request is still there")
	}
}

// Posts kept at once cannot pass the bound in bytes together: each
// reserves its file's exact size (header line included) before writing.
func TestPostsKeptAtOnceStayWithinTheBound(t *testing.T) {
	dir := t.TempDir()
	const maxBytes = 50_000
	s := open(t, dir, Limits{MaxBytes: maxBytes, MaxPostsPerClient: 1000})
	defer s.Close()
	panels := map[string]int{}
	for i := range 200 { // a long header line: every panel name is in it
		panels[fmt.Sprintf("panel-%03d", i)] = 1
	}
	data := []byte(`{"p":[{"x":"` + strings.Repeat("x", 3000) + `"}]}`)
	var wg sync.WaitGroup
	var kept, full atomic.Int32
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.Keep(header(fmt.Sprintf("192.0.2.%d", i%8), fmt.Sprintf("r%d", i), time.Now(), panels), data)
			switch {
			case err == nil:
				kept.Add(1)
			case errors.Is(err, ErrFull):
				full.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	var onDisk int64
	_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(path, postExt) {
			info, _ := d.Info()
			onDisk += info.Size()
		}
		return nil
	})
	if kept.Load() == 0 || full.Load() == 0 || onDisk > maxBytes || onDisk != s.Bytes() {
		t.Errorf("%d kept, %d refused; %d bytes on disk (the store counts %d), want some of each and at most %d", kept.Load(), full.Load(), onDisk, s.Bytes(), maxBytes)
	}
}

// Addresses whose posts are all gone leave nothing behind: no folder, and
// no entry in memory, however many come and go.
func TestAddressesGoneLeaveNothingBehind(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, roomy)
	defer s.Close()
	for i := range 50 {
		client := fmt.Sprintf("2001:db8::%x", i)
		if err := s.Keep(header(client, "a", time.Now(), map[string]int{"p": 1}), []byte(`{"p":[{}]}`)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Drop(context.Background(), client); err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	s.mu.Lock()
	left := len(s.clients) + len(s.reserved)
	s.mu.Unlock()
	if len(names) != 1 || left != 0 || s.Bytes() != 0 {
		t.Errorf("after 50 addresses came and went: folder holds %v, %d entries in memory, %d bytes; want the lock file alone and nothing", names, left, s.Bytes())
	}
	if err := s.Room("2001:db8::1"); err != nil {
		t.Errorf("Room on an empty quarantine: %v", err)
	}
}
