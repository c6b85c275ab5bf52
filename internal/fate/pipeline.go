package fate

import "time"

// minutes counts something per minute for the last hour, in a ring.
type minutes struct {
	counts [60]int
	start  [60]int64 // the minute (Unix time / 60) each slot counts
}

func (m *minutes) add(at time.Time, n int) {
	minute := at.Unix() / 60
	slot := minute % 60
	if m.start[slot] != minute {
		m.start[slot], m.counts[slot] = minute, 0
	}
	m.counts[slot] += n
}

// last is the count of each of the last n minutes up to now, oldest first.
func (m *minutes) last(now time.Time, n int) []int {
	out := make([]int, n)
	minute := now.Unix() / 60
	for i := range n {
		want := minute - int64(n-1-i)
		if slot := want % 60; m.start[slot] == want {
			out[i] = m.counts[slot]
		}
	}
	return out
}

// sum is the count of the last n minutes.
func (m *minutes) sum(now time.Time, n int) int {
	total := 0
	for _, c := range m.last(now, n) {
		total += c
	}
	return total
}

// pipeline is what the Book knows of the pipeline as a whole.
type pipeline struct {
	received, delivered, deadLettered, failed minutes
	queue                                     Queue
	queueSeen                                 time.Time
}

// Queue is what waits in the disk queue, as it last reported.
type Queue struct {
	Events   int64
	Bytes    int64
	MaxBytes int64
	Oldest   time.Duration
}

// Received counts n events of a stored post.
func (b *Book) Received(n int, at time.Time) {
	if !b.on.Load() {
		return
	}
	b.mu.Lock()
	b.received.add(at, n)
	b.mu.Unlock()
}

// QueueState records what waits in the queue; the disk_queue reports it
// once a second.
func (b *Book) QueueState(q Queue, at time.Time) {
	if !b.on.Load() {
		return
	}
	b.mu.Lock()
	b.queue, b.queueSeen = q, at
	b.mu.Unlock()
}

// Summary is the state of the pipeline at a glance.
type Summary struct {
	// HasQueue says whether a disk_queue in this process reports to the
	// Book; without one (the scale-out ingest) delivery cannot be seen here.
	HasQueue bool
	Queue    Queue
	// Of the last 5 minutes.
	Delivered, DeadLettered, Failed int
	// Per minute for the last hour, oldest first.
	ReceivedPerMinute, DeliveredPerMinute []int
}

// queueStale is how long after its last report the queue counts as gone.
const queueStale = 10 * time.Second

// Summarize is the state of the pipeline at now.
func (b *Book) Summarize(now time.Time) Summary {
	b.mu.Lock()
	defer b.mu.Unlock()
	return Summary{
		HasQueue:           !b.queueSeen.IsZero() && now.Sub(b.queueSeen) < queueStale,
		Queue:              b.queue,
		Delivered:          b.delivered.sum(now, 5),
		DeadLettered:       b.deadLettered.sum(now, 5),
		Failed:             b.failed.sum(now, 5),
		ReceivedPerMinute:  b.received.last(now, 60),
		DeliveredPerMinute: b.delivered.last(now, 60),
	}
}
