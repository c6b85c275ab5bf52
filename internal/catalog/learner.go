package catalog

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Learning sits beside a path measured hard (the receiver's answer to
// Netcore), so it runs off it, in one goroutine, within a budget:
//
//   - posts wait for it in a channel bounded in bytes (QueueBytes of
//     events); a post that finds it full is counted, not learned;
//   - it spends at most Budget of one core: past that, it walks a sample
//     of events (one in every 2, 4 ... up to MaxEvery), and walks them all
//     again once it has time to spare. At one in MaxEvery, a change seen
//     in every event that carries it is missed over 1,000 such events with
//     a chance of (63/64)^1000, under 1 in 6 million.
const (
	QueueBytes = 4 << 20
	queuePosts = 1024
	Budget     = 0.01
	MaxEvery   = 64
	// budgetWindow is how often the sampling is set again.
	budgetWindow = 100 * time.Millisecond
	minSampled   = 1000
	// SaveEvery is how often a changed catalog is written; a flagged change
	// is written within saveFlagged.
	SaveEvery   = 10 * time.Second
	saveFlagged = time.Second
)

// Learner learns the posts offered to it off the caller's path and keeps
// the catalog saved.
type Learner struct {
	cat    *Catalog
	dir    string
	onSave func(error)

	// OnUnlearnt is told of the events of each panel of a post that found
	// the queue's places all taken (to count them). Set before any offer.
	OnUnlearnt func(events int)

	offers   chan offer
	queued   atomic.Int64 // bytes of events waiting
	unlearnt atomic.Int64 // events of posts that found the queue full
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once

	// Sampling, the goroutine's own.
	every  int // walk one event in every
	rng    *rand.Rand
	busy   time.Duration // spent learning in this window
	seen   int           // events offered in this window
	window time.Time     // when this window began
}

type offer struct {
	panel     string
	events    [][]byte
	seen      int
	bytes     int64
	requestID string
	at        time.Time
}

// NewLearner starts learning into c, saving it in dir; onSave is told of
// each failed save.
func NewLearner(c *Catalog, dir string, onSave func(error)) *Learner {
	l := &Learner{
		cat: c, dir: dir, onSave: onSave,
		offers: make(chan offer, queuePosts),
		stop:   make(chan struct{}), done: make(chan struct{}),
		every: 1, rng: newRand(), window: time.Now(),
	}
	go l.run()
	return l
}

// PostPanel is one panel of a post offered to be learned.
type PostPanel struct {
	Name   string
	Events [][]byte
}

// Offer hands a panel's events of one stored post to be learned, holding
// just their bytes (OfferPost).
func (l *Learner) Offer(panel string, events [][]byte, requestID string, at time.Time) {
	var held int64
	for _, ev := range events {
		held += int64(len(ev))
	}
	l.OfferPost([]PostPanel{{panel, events}}, held, requestID, at)
}

// OfferPost hands the panels of one stored post to be learned. held is
// what they keep in memory while they wait (events sliced from the post's
// data keep all of it): the queue's bound counts it, for the whole post or
// none of it. It never waits: past the bound the events are counted by
// their panels and not walked; past the queue's count they are not counted
// either (Unlearnt). The events must not change afterwards.
func (l *Learner) OfferPost(panels []PostPanel, held int64, requestID string, at time.Time) {
	walk := l.queued.Add(held) <= QueueBytes
	if !walk {
		l.queued.Add(-held)
		held = 0
	}
	for i, p := range panels {
		o := offer{panel: p.Name, events: p.Events, seen: len(p.Events), requestID: requestID, at: at}
		if !walk {
			o.events = nil // counted by the panel, not walked
		}
		if i == len(panels)-1 {
			o.bytes = held // let go once the post's last panel is learned
		}
		select {
		case l.offers <- o:
		default:
			l.queued.Add(-o.bytes)
			l.unlearnt.Add(int64(o.seen))
			if l.OnUnlearnt != nil {
				l.OnUnlearnt(o.seen)
			}
		}
	}
}

// Unlearnt is how many events were received while the queue of posts to
// learn was full, not counted in any panel.
func (l *Learner) Unlearnt() int64 { return l.unlearnt.Load() }

// Close learns what waits, stops, and saves the catalog.
func (l *Learner) Close() error {
	l.once.Do(func() { close(l.stop) })
	<-l.done
	return l.cat.Save(l.dir)
}

func (l *Learner) run() {
	defer close(l.done)
	save := time.NewTicker(saveFlagged)
	defer save.Stop()
	lastSave := time.Now()
	for {
		select {
		case o := <-l.offers:
			l.learn(o)
		case now := <-save.C:
			dirty, flagged := l.cat.unsaved()
			if flagged || dirty && now.Sub(lastSave) >= SaveEvery {
				lastSave = now
				if err := l.cat.Save(l.dir); err != nil && l.onSave != nil {
					l.onSave(err)
				}
			}
		case <-l.stop:
			for {
				select {
				case o := <-l.offers:
					l.learn(o)
				default:
					return
				}
			}
		}
	}
}

func (l *Learner) learn(o offer) {
	start := time.Now()
	l.cat.learn(o.panel, o.seen, o.events, l.sample, o.requestID, o.at)
	l.queued.Add(-o.bytes)
	end := time.Now()
	l.busy += end.Sub(start)
	l.seen += o.seen
	if elapsed := end.Sub(l.window); elapsed >= budgetWindow {
		l.every = resample(l.every, l.busy, elapsed, l.seen)
		l.busy, l.seen, l.window = 0, 0, end
	}
}

// resample sets the sampling for the next window from the share of the
// last one spent learning. Fewer than minSampled events a window are all
// learned whatever they cost: at that rate the cost is no one's concern
// (a slow machine's hiccup would otherwise start sampling), and every
// event counts for drift.
func resample(every int, busy, elapsed time.Duration, seen int) int {
	switch share := float64(busy) / float64(elapsed); {
	case share > Budget && seen >= minSampled:
		return min(every*2, MaxEvery)
	case share < Budget/4:
		return max(every/2, 1)
	}
	return every
}

// newRand is the sampler's source: no one chooses which events are
// skipped, so a fixed seed does.
func newRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// sample picks the events walked: one in every, at random.
func (l *Learner) sample() bool {
	return l.every == 1 || l.rng.IntN(l.every) == 0
}
