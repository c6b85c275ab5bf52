package diskqueue

import "time"

// rewrite is a failed event of a post, written as a record of its own so
// that the rest of the post can be settled without it; its retry is
// scheduled once that record is committed. A damaged one goes to the
// damaged bucket instead, with no retry.
type rewrite struct {
	post     *openPost
	index    int
	rec      []byte
	attempts int
	due      time.Time
	damaged  bool
}

// rewriteLocked takes a failed event of a post out of it: the event, as
// stored (rec, from retryRecord), is written as an event record of its own,
// retried as any other from then on, and the post is no longer held back
// by it. Until that record is committed the event stays unsettled in its
// post, so that a crash loses nothing.
func (q *queue) rewriteLocked(l *lease, rec []byte, due time.Time) {
	q.bytes += int64(len(rec))
	q.pendRewriteLocked(rewrite{post: l.post, index: l.index, rec: rec, attempts: l.attempts + 1, due: due})
}

// pendRewriteLocked gives rw to the committer; its record is pinned until
// it is written (committed).
func (q *queue) pendRewriteLocked(rw rewrite) {
	q.mem.pin(int64(len(rw.rec)))
	q.store.rewrite(rw)
}

// retryRecord is the record a failed event of a post is retried from.
func (q *queue) retryRecord(l *lease) ([]byte, error) {
	msg, err := q.eventMessage(l)
	if err != nil {
		return nil, err
	}
	return encodeRecord(msg, l.post.storedAt)
}
