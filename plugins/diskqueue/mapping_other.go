//go:build !linux

package diskqueue

import bolt "go.etcd.io/bbolt"

// releaseMappedPages is a no-op where madvise is not at hand.
func releaseMappedPages(*bolt.DB, *bolt.Tx) {}

// allocTable is zeroed memory for an idTable; from the heap here.
func allocTable(size int) []byte { return make([]byte, size) }

// freeTable leaves b to the garbage collector.
func freeTable([]byte) {}
