package diskqueue

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"math/bits"

	bolt "go.etcd.io/bbolt"
)

// bucketSettled holds, for a post record some of whose events are settled
// while others still wait, which are settled: sequence (8 bytes) → a bitmap
// of the post's events, bit i for its event i (across its panels, in
// order). An event is settled once delivered, dead-lettered, found to be a
// repeat, or written as a record of its own after a failed delivery. The
// marks are written in the commits that also carry deletes, so that after a
// restart a post's settled events are not sent again; they go with the
// post's record when its last event is settled.
var bucketSettled = []byte("settled")

// countSettled counts the settled events among a post's n.
func countSettled(marks []byte, n int) int {
	count := 0
	for i, b := range marks {
		if rest := n - 8*i; rest < 8 {
			b &= byte(1)<<max(rest, 0) - 1 // bits past the last event are not events
		}
		count += bits.OnesCount8(b)
	}
	return count
}

// sealMarks is a post's marks as stored: the crc32c of the bitmap (4 bytes,
// big endian), then the bitmap. Every other byte of the file has a checksum;
// a flipped bit here would otherwise skip an event that was never sent.
func sealMarks(bitmap []byte) []byte {
	return append(binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(bitmap)), crc32.Checksum(bitmap, castagnoli)), bitmap...)
}

// openMarks reads the stored marks of a post of n events. Marks of the
// wrong size or whose checksum fails are not believed: nothing is taken as
// settled, and the post's events are sent again rather than lost.
func openMarks(v []byte, n int) ([]byte, bool) {
	if len(v) != 4+(n+7)/8 || binary.BigEndian.Uint32(v) != crc32.Checksum(v[4:], castagnoli) {
		return nil, false
	}
	return v[4:], true
}

// writeMarks writes the settled marks of the posts whose marks changed,
// with the events written on their own set, and deletes those of deleted
// posts.
func writeMarks(settled *bolt.Bucket, marks map[uint64][]byte, unmark []uint64) error {
	for seq, m := range marks {
		if err := settled.Put(seqKey(seq), sealMarks(m)); err != nil {
			return err
		}
	}
	for _, seq := range unmark {
		if err := settled.Delete(seqKey(seq)); err != nil {
			return err
		}
	}
	return nil
}

// loadMarks reads the settled marks at open, before the records: each
// marked post waits with its settled events counted out. A post whose
// events were all settled (its delete not yet committed when the process
// stopped) is deleted now, and so are marks whose record is gone.
func loadMarks(tx *bolt.Tx, marked func(*openPost)) error {
	events, settled := tx.Bucket(bucketEvents), tx.Bucket(bucketSettled)
	var done, orphans [][]byte
	err := settled.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			orphans = append(orphans, bytes.Clone(k))
			return nil
		}
		p, ok := markedPost(binary.BigEndian.Uint64(k), events.Get(k), v)
		switch {
		case !ok:
			orphans = append(orphans, bytes.Clone(k))
		case p.waiting <= 0:
			done = append(done, bytes.Clone(k))
		default:
			marked(p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range done {
		if err := events.Delete(k); err != nil {
			return err
		}
	}
	for _, k := range append(done, orphans...) {
		if err := settled.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// markedPost is the open post of record seq (rec, nil when gone) with the
// stored marks v: its settled events counted out. Marks without a post
// record, or not believed (openMarks), say false.
func markedPost(seq uint64, rec, v []byte) (*openPost, bool) {
	if rec == nil || !isPostRecord(rec) {
		return nil, false
	}
	n := recordEvents(rec)
	marks, ok := openMarks(v, n)
	if !ok {
		return nil, false
	}
	p := newOpenPost(seq, n)
	copy(p.settled, marks)
	p.waiting -= countSettled(p.settled, n)
	return p, true
}
