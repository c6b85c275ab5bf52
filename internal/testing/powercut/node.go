package powercut

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// node is go-fuse's loopback node with every change that a power cut can
// undo recorded first, under the one lock of the durable state. Changes the
// record does not model (hard links, symlinks, device nodes, O_TMPFILE,
// copy_file_range, renaming over a directory) are refused with ENOTSUP
// rather than passed through unrecorded; fallocate is refused by the file.
type node struct {
	*fs.LoopbackNode
	d *durable
}

var (
	_ fs.NodeWrapChilder    = (*node)(nil)
	_ fs.NodeCreater        = (*node)(nil)
	_ fs.NodeOpener         = (*node)(nil)
	_ fs.NodeSetattrer      = (*node)(nil)
	_ fs.NodeFsyncer        = (*node)(nil)
	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeMkdirer        = (*node)(nil)
	_ fs.NodeUnlinker       = (*node)(nil)
	_ fs.NodeRmdirer        = (*node)(nil)
	_ fs.NodeRenamer        = (*node)(nil)
	_ fs.NodeLinker         = (*node)(nil)
	_ fs.NodeSymlinker      = (*node)(nil)
	_ fs.NodeMknoder        = (*node)(nil)
	_ fs.NodeTmpfiler       = (*node)(nil)
	_ fs.NodeCopyFileRanger = (*node)(nil)
)

// WrapChild makes every node go-fuse creates under the root one of ours.
func (n *node) WrapChild(_ context.Context, ops fs.InodeEmbedder) fs.InodeEmbedder {
	return &node{LoopbackNode: ops.(*fs.LoopbackNode), d: n.d}
}

// path is the node's place in the backing tree, or its child's.
func (n *node) path(child string) string {
	return filepath.Join(n.d.tree, n.Path(nil), child)
}

// locked runs a change under the lock, unless the power is off.
func (n *node) locked(change func() syscall.Errno) syscall.Errno {
	n.d.mu.Lock()
	defer n.d.mu.Unlock()
	if n.d.cut {
		return errCut
	}
	return change()
}

// toErrno passes an errno through and turns any other failure into EIO, as
// a disk would report it.
func toErrno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	return syscall.EIO
}

func inoOf(path string) (uint64, syscall.Errno) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return 0, toErrno(err)
	}
	return st.Ino, 0
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (ch *fs.Inode, fh fs.FileHandle, fuseFlags uint32, errno syscall.Errno) {
	errno = n.locked(func() syscall.Errno {
		p := n.path(name)
		ino, missing := inoOf(p)
		if missing == 0 && flags&syscall.O_TRUNC != 0 {
			if err := n.d.beforeTruncate(ino, 0); err != nil {
				return toErrno(err)
			}
		}
		var errno syscall.Errno
		if ch, fh, fuseFlags, errno = n.LoopbackNode.Create(ctx, name, flags, mode, out); errno != 0 {
			return errno
		}
		if missing != 0 {
			if err := n.d.created(p); err != nil {
				return toErrno(err)
			}
		}
		ino, errno = inoOf(p)
		fh = &file{lf: fh.(*fs.LoopbackFile), ino: ino, d: n.d}
		return errno
	})
	return ch, fh, fuseFlags, errno
}

func (n *node) Open(ctx context.Context, flags uint32) (fh fs.FileHandle, fuseFlags uint32, errno syscall.Errno) {
	errno = n.locked(func() syscall.Errno {
		ino, errno := inoOf(n.path(""))
		if errno != 0 {
			return errno
		}
		if flags&syscall.O_TRUNC != 0 && flags&syscall.O_ACCMODE != syscall.O_RDONLY {
			if err := n.d.beforeTruncate(ino, 0); err != nil {
				return toErrno(err)
			}
		}
		if fh, fuseFlags, errno = n.LoopbackNode.Open(ctx, flags); errno != 0 {
			return errno
		}
		fh = &file{lf: fh.(*fs.LoopbackFile), ino: ino, d: n.d}
		return 0
	})
	return fh, fuseFlags, errno
}

func (n *node) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	return n.locked(func() syscall.Errno {
		var inner fs.FileHandle
		if f, ok := fh.(*file); ok {
			inner = f.lf
		}
		if size, ok := in.GetSize(); ok && !n.IsDir() {
			ino, errno := inoOf(n.path(""))
			if errno != 0 {
				return errno
			}
			if err := n.d.beforeTruncate(ino, int64(size)); err != nil {
				return toErrno(err)
			}
		}
		return n.LoopbackNode.Setattr(ctx, inner, in, out)
	})
}

// Fsync makes a file's content durable, or a directory's listing: go-fuse
// routes a directory's fsync here too (see dirHandle).
func (n *node) Fsync(_ context.Context, _ fs.FileHandle, _ uint32) syscall.Errno {
	return n.locked(func() syscall.Errno {
		if n.IsDir() {
			return fs.ToErrno(n.d.snapshotDir(n.path("")))
		}
		ino, errno := inoOf(n.path(""))
		if errno != 0 {
			return errno
		}
		return fs.ToErrno(n.d.synced(ino))
	})
}

func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	fh, fuseFlags, errno := n.LoopbackNode.OpendirHandle(ctx, flags)
	if errno != 0 {
		return nil, 0, errno
	}
	return &dirHandle{dirReader: fh.(dirReader), n: n}, fuseFlags, 0
}

func (n *node) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (ch *fs.Inode, errno syscall.Errno) {
	errno = n.locked(func() syscall.Errno {
		ch, errno = n.LoopbackNode.Mkdir(ctx, name, mode, out)
		return errno
	})
	return ch, errno
}

// Unlink needs no record: the file's link in the store keeps its content
// for as long as a durable listing may name it.
func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	return n.locked(func() syscall.Errno { return n.LoopbackNode.Unlink(ctx, name) })
}

func (n *node) Rmdir(_ context.Context, name string) syscall.Errno {
	return n.locked(func() syscall.Errno { return fs.ToErrno(n.d.bury(n.path(name))) })
}

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	return n.locked(func() syscall.Errno {
		target := filepath.Join(n.d.tree, newParent.EmbeddedInode().Path(nil), newName)
		var st syscall.Stat_t
		if err := syscall.Lstat(target, &st); err == nil && st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			return syscall.ENOTSUP
		}
		return n.LoopbackNode.Rename(ctx, name, newParent, newName, flags)
	})
}

func (n *node) Link(context.Context, fs.InodeEmbedder, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.ENOTSUP
}

func (n *node) Symlink(context.Context, string, string, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.ENOTSUP
}

func (n *node) Mknod(context.Context, string, uint32, uint32, *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	return nil, syscall.ENOTSUP
}

func (n *node) Tmpfile(context.Context, uint32, uint32, *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.ENOTSUP
}

func (n *node) CopyFileRange(context.Context, fs.FileHandle, uint64, *fs.Inode, fs.FileHandle, uint64, uint64, uint64) (uint32, syscall.Errno) {
	return 0, syscall.ENOTSUP
}

// dirReader is what go-fuse asks of an open directory, minus Fsyncdir.
type dirReader interface {
	fs.FileReaddirenter
	fs.FileReleasedirer
	fs.FileSeekdirer
}

// dirHandle is an open directory whose fsync is recorded: go-fuse's own
// loopback directory would fsync the backing directory and record nothing.
type dirHandle struct {
	dirReader
	n *node
}

func (h *dirHandle) Fsyncdir(ctx context.Context, flags uint32) syscall.Errno {
	return h.n.Fsync(ctx, nil, flags)
}
