// Package powercut is a test file system that can lose power: a loopback
// FUSE mount (go-fuse) over a backing directory that, when the test cuts
// the power, forgets every write not yet fsync'd and every create, rename,
// unlink and rmdir not yet made durable by an fsync of its directory, as
// LazyFS does for Jepsen. kill -9 alone leaves the kernel's page cache
// intact, so without it no test notices a missing or misplaced fsync.
//
// Writes pass straight through to the backing directory (so the mount reads
// back what was written, memory maps included); beside it the package keeps
// what a disk would have kept: for each file, its size at its last fsync and
// the old content of every range written since; for each directory, its
// entries at its last fsync. Cut stops all further changes (they fail with
// EIO); Close then unmounts and rolls the backing directory back to that
// durable state, and a new Mount starts from it with a cold page cache.
// CutTorn is harsher: some overwrites not yet fsync'd reach the disk anyway,
// sector by sector (4 KiB) in no order, as from a disk's own write cache.
// fsync and fdatasync are treated alike (both make data and size durable).
// The model is strict POSIX: a new file's name is durable only once its
// directory is fsync'd, and a new directory's only once its parent is.
//
// Files:
//   - fs.go: Mount, Cut, CutTorn, Close; mounting needs root and /dev/fuse (mount(2)
//     is called directly, no fusermount).
//   - durable.go: the durable state: change logs, directory listings, the
//     store of hard links that keeps unlinked content, and the roll-back.
//   - node.go: the FUSE node: records each change before passing it on, and
//     refuses with ENOTSUP what it does not model (links, symlinks, device
//     nodes, O_TMPFILE, copy_file_range, renaming over a directory).
//   - file.go: the open file: records writes; offers neither FUSE
//     passthrough nor fallocate, which would bypass the record.
//
// A process must not use memory-mapped files on a mount that it serves
// itself: a page fault holds the lock that serving the read may need. Run
// such code (bbolt, the built binary) in a child process.
package powercut
