package netcore

import (
	"net/netip"
	"sync"
	"time"
)

// refusalLines rate-limits the log lines of refusals (requests answered
// without a post being read: 401, 403, 404, 405, 429, a busy 503), of the
// URL checks (HEAD and GET, answered 200 the same way) and of empty posts
// (logged even without log_posts, so that they show while Netcore is set
// up, and as cheap to repeat as a refusal) and of quarantined posts. One client
// from a refused address once made 12,855 requests in 5 s over one
// keep-alive connection, and every one wrote a warning: 3.25 MB of log. Now
// each client, status and message gets at most one line per refusalLogEvery, and that
// line says how many refusals were not logged since. The metric
// netcore_posts_total still counts every one.
type refusalLines struct {
	mu    sync.Mutex
	every time.Duration
	seen  map[refusalKey]*refusalCount
	swept time.Time // when stale clients were last dropped
}

type refusalKey struct {
	client netip.Addr
	status int
	msg    string // so that a URL check and an empty post, both 200, each show
}

type refusalCount struct {
	logged  time.Time
	skipped int // refusals not logged since logged
}

const (
	refusalLogEvery = 10 * time.Second
	// maxRefusalKeys bounds the memory of the limiter when refusals come
	// from many addresses; past it, stale entries are dropped and, if none
	// is stale, new clients are not logged until one is.
	maxRefusalKeys = 4096
)

func newRefusalLines() *refusalLines {
	return &refusalLines{every: refusalLogEvery, seen: map[refusalKey]*refusalCount{}}
}

// admit says whether this refusal gets a log line and, if so, how many of
// the same client, status and message were not logged before it.
func (l *refusalLines) admit(client netip.Addr, status int, msg string, now time.Time) (skipped int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := refusalKey{client, status, msg}
	c := l.seen[key]
	if c == nil {
		if len(l.seen) >= maxRefusalKeys && !l.dropStale(now) {
			return 0, false
		}
		l.seen[key] = &refusalCount{logged: now}
		return 0, true
	}
	if now.Sub(c.logged) < l.every {
		c.skipped++
		return 0, false
	}
	skipped, c.skipped, c.logged = c.skipped, 0, now
	return skipped, true
}

// dropStale forgets clients not logged within the interval, and reports
// whether that made room. It sweeps at most once an interval, so that a
// flood from many addresses costs a map look-up a request, not a sweep.
func (l *refusalLines) dropStale(now time.Time) bool {
	if now.Sub(l.swept) < l.every {
		return false
	}
	l.swept = now
	for key, c := range l.seen {
		if now.Sub(c.logged) >= l.every {
			delete(l.seen, key)
		}
	}
	return len(l.seen) < maxRefusalKeys
}
