package diskqueue

import (
	"fmt"
	"os"
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// releasesMappedPages says whether releaseMappedPages does anything here.
const releasesMappedPages = true

// releaseMappedPages lets go of the queue file's pages that bbolt's memory
// map holds in this process. bbolt reads through the map, and each commit
// reads the page the previous one wrote, so without this the process's RSS
// grows with every byte written until bbolt remaps the file (up to the
// whole file, a GiB by default). The pages are clean page cache of a
// read-only shared map: dropping them loses nothing, a later read maps them
// again from the cache.
//
// tx must be open: a transaction holds bbolt's remap lock, so the map
// cannot move or shrink under the call.
func releaseMappedPages(db *bolt.DB, tx *bolt.Tx) {
	if size := tx.Size(); size > 0 {
		// An error (there is none for a valid range) only leaves the pages mapped.
		_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, db.Info().Data, uintptr(size), syscall.MADV_DONTNEED)
	}
}

// allocTable is zeroed memory for an idTable, mapped outside the Go heap so
// that the garbage collector neither scans it nor counts it in the heap
// that GOGC multiplies. Pages are only resident once written.
func allocTable(size int) []byte {
	b, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return make([]byte, size) // no address space left for a map: the heap will do
	}
	return b
}

// freeTable unmaps memory from allocTable. A slice from the heap fallback
// is not mapped, munmap refuses it, and the collector frees it.
func freeTable(b []byte) { _ = syscall.Munmap(b) }

// mapFile maps the file at path read-only, for reading it whole without
// holding it in the heap; unmap ends the mapping, after which data must not
// be read.
func mapFile(path string) (data []byte, unmap func(), err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close() // the mapping outlives the descriptor
	info, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if info.Size() == 0 {
		return nil, func() {}, nil // mmap refuses an empty length
	}
	data, err = syscall.Mmap(int(f.Fd()), 0, int(info.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("mapping %s: %w", path, err)
	}
	return data, func() { _ = syscall.Munmap(data) }, nil
}
