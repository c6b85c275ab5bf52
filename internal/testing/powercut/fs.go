package powercut

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// FS is a mounted power-cut file system.
type FS struct {
	d          *durable
	server     *fuse.Server
	mountpoint string
}

// storeSuffix names the store beside the backing directory: it must be on
// the same file system, for hard links.
const storeSuffix = ".powercut-store"

// Mount serves the backing directory at mountpoint (an empty directory).
// Everything already in the backing directory counts as durable. It needs
// root (it mounts with mount(2) itself, not with fusermount) and /dev/fuse.
func Mount(backing, mountpoint string) (*FS, error) {
	d, err := newDurable(backing, backing+storeSuffix)
	if err != nil {
		return nil, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		return nil, fmt.Errorf("stat %s: %w", backing, err)
	}
	loopback := &fs.LoopbackRoot{Path: backing, Dev: uint64(st.Dev)}
	root := &node{LoopbackNode: &fs.LoopbackNode{RootData: loopback}, d: d}
	loopback.RootNode = root
	server, err := fs.Mount(mountpoint, root, &fs.Options{MountOptions: fuse.MountOptions{
		DirectMountStrict: true,
		FsName:            backing,
		Name:              "powercut",
	}})
	if err != nil {
		_ = d.discard()
		return nil, fmt.Errorf("mounting %s at %s (needs root and /dev/fuse): %w", backing, mountpoint, err)
	}
	return &FS{d: d, server: server, mountpoint: mountpoint}, nil
}

// Cut is the moment the power goes off. From now on every change and
// every fsync fails with EIO, so nothing more becomes durable; Close then
// drops everything that was not.
func (f *FS) Cut() { f.CutTorn(nil) }

// CutTorn is a Cut after which some overwrites not yet fsync'd survive
// anyway, as a disk may have written some sectors of its cache before the
// power went and not others: for each 4 KiB sector overwritten since its
// file's last fsync, kept says whether that write reached the disk. What
// was appended past the size at the last fsync is still dropped, and the
// directories are rolled back as strictly as by Cut. kept may be nil.
func (f *FS) CutTorn(kept func() bool) {
	f.d.mu.Lock()
	f.d.cut, f.d.kept = true, kept
	f.d.mu.Unlock()
}

// Close unmounts the file system. After a Cut it rolls the backing
// directory back to its durable state: each file to its content at its
// last fsync, and each directory to its entries at its last fsync (a
// directory never fsync'd holds what it held at the mount, or nothing if it
// was created since). Without a Cut, everything stays, as after a clean
// shutdown. Processes using the mount must have ended.
func (f *FS) Close() error {
	if err := f.unmount(); err != nil {
		return err
	}
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	if f.d.cut {
		return f.d.forget()
	}
	return f.d.discard()
}

// unmount retries for a while: the kernel may still hold the files of a
// process that was just killed.
func (f *FS) unmount() error {
	var err error
	for range 100 {
		if err = f.server.Unmount(); err == nil {
			f.server.Wait()
			return nil
		}
		if !errors.Is(err, syscall.EBUSY) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Something still holds a file: detach the mount so that it does not
	// outlive the test, and report the failure.
	_ = syscall.Unmount(f.mountpoint, syscall.MNT_DETACH)
	return fmt.Errorf("unmounting %s: %w", f.mountpoint, err)
}

// Mountpoint is where the file system is mounted.
func (f *FS) Mountpoint() string { return f.mountpoint }

// Usable says whether this machine can mount it, and if not, why not.
func Usable() error {
	if os.Geteuid() != 0 {
		return errors.New("mounting without fusermount needs root")
	}
	fd, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("no usable /dev/fuse: %w", err)
	}
	return fd.Close()
}
