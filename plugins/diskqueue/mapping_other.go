//go:build !linux

package diskqueue

import bolt "go.etcd.io/bbolt"

// releaseMappedPages is a no-op where madvise is not at hand.
func releaseMappedPages(*bolt.DB, *bolt.Tx) {}
