//go:build !linux

package diskqueue

import (
	"os"

	bolt "go.etcd.io/bbolt"
)

// releasesMappedPages says whether releaseMappedPages does anything here.
const releasesMappedPages = false

// releaseMappedPages is a no-op where madvise is not at hand.
func releaseMappedPages(*bolt.DB, *bolt.Tx) {}

// allocTable is zeroed memory for an idTable; from the heap here.
func allocTable(size int) []byte { return make([]byte, size) }

// freeTable leaves b to the garbage collector.
func freeTable([]byte) {}

// mapFile reads the file at path whole here, where no map is at hand.
func mapFile(path string) (data []byte, unmap func(), err error) {
	data, err = os.ReadFile(path)
	return data, func() {}, err
}
