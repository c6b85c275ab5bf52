package powercut

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
)

// errCut is returned by every change made after the power was cut: the
// machine is off, nothing it does any more reaches the disk.
var errCut = syscall.EIO

// entry is one name in a directory's durable listing.
type entry struct {
	ino  uint64
	dir  bool
	mode fs.FileMode
}

// undo is the content a write replaced, kept until the file is fsync'd.
type undo struct {
	off int64
	old []byte
}

// fileLog is what a regular file was at its last fsync: its size, and the
// old content of every range changed since, newest last.
type fileLog struct {
	f    *os.File // the file's link in the store, read-write
	size int64
	undo []undo
}

// durable keeps the state that would survive a power cut, next to the live
// state in the backing directory. The live tree is what the mount shows.
// The store beside it holds one extra hard link per regular file, named by
// inode number, so that the content of a file unlinked or renamed over
// stays reachable until a directory fsync makes that change durable; it
// also holds removed directories (renamed there, not deleted), so that no
// inode number is reused while the listings below refer to it.
type durable struct {
	mu      sync.Mutex
	cut     bool
	kept    func() bool // after a torn cut: did this sector's write reach the disk?
	tree    string
	store   string
	rootIno uint64
	rootMod fs.FileMode
	dirs    map[uint64]map[string]entry // durable listing of each directory; absent: empty
	files   map[uint64]*fileLog         // files changed since their last fsync
}

// newDurable takes everything in tree as durable, as after a clean start.
func newDurable(tree, store string) (*durable, error) {
	if err := os.RemoveAll(store); err != nil {
		return nil, fmt.Errorf("clearing the store %s: %w", store, err)
	}
	if err := os.Mkdir(store, 0o700); err != nil {
		return nil, fmt.Errorf("creating the store %s (it must be on the backing directory's file system): %w", store, err)
	}
	d := &durable{tree: tree, store: store, dirs: map[uint64]map[string]entry{}, files: map[uint64]*fileLog{}}
	root, err := lstatEntry(tree)
	if err != nil {
		return nil, err
	}
	d.rootIno, d.rootMod = root.ino, root.mode
	err = filepath.WalkDir(tree, func(path string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !de.IsDir() {
			return d.keep(path)
		}
		return d.snapshotDir(path)
	})
	if err != nil {
		return nil, fmt.Errorf("reading the backing directory %s: %w", tree, err)
	}
	return d, nil
}

func lstatEntry(path string) (entry, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return entry{}, fmt.Errorf("stat %s: %w", path, err)
	}
	mode := fs.FileMode(st.Mode & 0o777)
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFDIR:
		return entry{ino: st.Ino, dir: true, mode: mode | fs.ModeDir}, nil
	case syscall.S_IFREG:
		return entry{ino: st.Ino, mode: mode}, nil
	}
	return entry{}, fmt.Errorf("%s: only regular files and directories are supported", path)
}

func (d *durable) storePath(ino uint64) string {
	return filepath.Join(d.store, strconv.FormatUint(ino, 10))
}

// keep links a regular file into the store, once per inode.
func (d *durable) keep(path string) error {
	e, err := lstatEntry(path)
	if err != nil {
		return err
	}
	if e.dir {
		return fmt.Errorf("%s: a directory, not a file", path)
	}
	if err := os.Link(path, d.storePath(e.ino)); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("keeping %s in the store: %w", path, err)
	}
	return nil
}

// snapshotDir makes the directory's present listing its durable one: what
// an fsync of the directory does.
func (d *durable) snapshotDir(path string) error {
	self, err := lstatEntry(path)
	if err != nil {
		return err
	}
	names, err := os.ReadDir(path)
	if err != nil {
		return fmt.Errorf("listing %s: %w", path, err)
	}
	listing := make(map[string]entry, len(names))
	for _, n := range names {
		e, err := lstatEntry(filepath.Join(path, n.Name()))
		if err != nil {
			return err
		}
		listing[n.Name()] = e
	}
	d.dirs[self.ino] = listing
	return nil
}

// log returns the file's change log, starting one if the file has not
// changed since the mount or its last fsync.
func (d *durable) log(ino uint64) (*fileLog, error) {
	if l, ok := d.files[ino]; ok {
		return l, nil
	}
	f, err := os.OpenFile(d.storePath(ino), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening inode %d in the store: %w", ino, err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat inode %d in the store: %w", ino, err)
	}
	l := &fileLog{f: f, size: info.Size()}
	d.files[ino] = l
	return l, nil
}

// created records a new file: empty as far as the disk knows.
func (d *durable) created(path string) error {
	if err := d.keep(path); err != nil {
		return err
	}
	e, err := lstatEntry(path)
	if err != nil {
		return err
	}
	l, err := d.log(e.ino)
	if err != nil {
		return err
	}
	l.size = 0
	return nil
}

// beforeChange saves the durable bytes in [off, off+n) that a write or a
// truncation is about to replace. Bytes past the durable size need no
// saving: the restore cuts the file back to that size.
func (d *durable) beforeChange(ino uint64, off, n int64) error {
	l, err := d.log(ino)
	if err != nil {
		return err
	}
	end := min(off+n, l.size)
	if off >= end {
		return nil
	}
	old := make([]byte, end-off)
	// The file may be shorter than its durable size now: a truncation
	// already saved the bytes it dropped, so a short read is complete.
	read, err := l.f.ReadAt(old, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("saving the old content of inode %d at %d: %w", ino, off, err)
	}
	if read > 0 {
		l.undo = append(l.undo, undo{off: off, old: old[:read]})
	}
	return nil
}

// beforeTruncate saves what cutting the file to size would drop.
func (d *durable) beforeTruncate(ino uint64, size int64) error {
	l, err := d.log(ino)
	if err != nil {
		return err
	}
	return d.beforeChange(ino, size, l.size-size)
}

// synced makes the file's present content durable: what fsync and
// fdatasync do.
func (d *durable) synced(ino uint64) error {
	l, err := d.log(ino)
	if err != nil {
		return err
	}
	info, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("stat inode %d: %w", ino, err)
	}
	l.size, l.undo = info.Size(), nil
	return nil
}

// bury moves a removed directory into the store, so that its inode number
// is not reused while a durable listing may still name it.
func (d *durable) bury(path string) error {
	e, err := lstatEntry(path)
	if err != nil {
		return err
	}
	names, err := os.ReadDir(path)
	if err != nil {
		return fmt.Errorf("listing %s: %w", path, err)
	}
	if len(names) > 0 {
		return syscall.ENOTEMPTY
	}
	return os.Rename(path, filepath.Join(d.store, "dir-"+strconv.FormatUint(e.ino, 10)))
}

// forget rolls the backing directory back to its durable state: every file
// to its content at its last fsync (give or take the sectors a torn cut
// kept), the tree to the directories' listings at their last fsync. The
// mount must be gone.
func (d *durable) forget() error {
	for ino, l := range d.files {
		if err := l.rollBack(d.kept); err != nil {
			return fmt.Errorf("rolling back inode %d: %w", ino, err)
		}
	}
	fresh, lost := d.tree+".restoring", d.tree+".lost"
	for _, p := range []string{fresh, lost} {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	if err := os.Mkdir(fresh, d.rootMod.Perm()); err != nil {
		return fmt.Errorf("rebuilding the tree: %w", err)
	}
	if err := d.build(d.rootIno, fresh); err != nil {
		return fmt.Errorf("rebuilding the tree: %w", err)
	}
	if err := os.Rename(d.tree, lost); err != nil {
		return err
	}
	if err := os.Rename(fresh, d.tree); err != nil {
		return err
	}
	return d.discard(lost)
}

// sectorSize is what a torn cut keeps or drops as a whole: a disk writes a
// sector completely or not at all, but not sectors in order.
const sectorSize = 4096

// rollBack restores the content the file had at its last fsync. With kept,
// each sector overwritten since is asked whether its write reached the disk
// anyway, as a disk's own cache may have written it before the power went.
func (l *fileLog) rollBack(kept func() bool) error {
	for _, u := range slices.Backward(l.undo) {
		for start := u.off; start < u.off+int64(len(u.old)); {
			end := min((start/sectorSize+1)*sectorSize, u.off+int64(len(u.old)))
			if kept == nil || !kept() {
				if _, err := l.f.WriteAt(u.old[start-u.off:end-u.off], start); err != nil {
					return err
				}
			}
			start = end
		}
	}
	return l.f.Truncate(l.size)
}

// build recreates directory ino's durable listing under path.
func (d *durable) build(ino uint64, path string) error {
	for name, e := range d.dirs[ino] {
		p := filepath.Join(path, name)
		if !e.dir {
			if err := os.Link(d.storePath(e.ino), p); err != nil {
				return err
			}
			continue
		}
		if err := os.Mkdir(p, e.mode.Perm()); err != nil {
			return err
		}
		if err := d.build(e.ino, p); err != nil {
			return err
		}
	}
	return nil
}

// discard drops the store and anything else passed, after an unmount.
func (d *durable) discard(more ...string) error {
	for _, l := range d.files {
		l.f.Close()
	}
	d.files = nil
	for _, p := range append(more, d.store) {
		if err := os.RemoveAll(p); err != nil {
			return err
		}
	}
	return nil
}
