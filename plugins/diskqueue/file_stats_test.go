package diskqueue

import (
	"testing"

	bolt "go.etcd.io/bbolt"
)

// Stats count events, not records: a post record's events not yet settled,
// as the queue counts them when it opens the file.
func TestFileStatsCountEventsOfPostsNotYetSettled(t *testing.T) {
	path := partlyDeliveredPostsFile(t).path
	stats, err := ReadFileStats(path)
	// Post a: 100 events, 26 settled (a8..a32 delivered, a0 written on its
	// own); a0's own record; post c: 3. Post b was delivered.
	if err != nil || stats.Events != 74+1+3 || stats.Bytes == 0 || stats.Oldest.IsZero() || stats.Damaged != 0 {
		t.Errorf("stats %+v, %v; want 78 events waiting", stats, err)
	}

	// A file without the settled bucket (written before posts were
	// stored whole) has no settled events to count out.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketSettled) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if stats, err := ReadFileStats(path); err != nil || stats.Events != 100+1+3 {
		t.Errorf("without the settled bucket: stats %+v, %v; want 104 events", stats, err)
	}
}
