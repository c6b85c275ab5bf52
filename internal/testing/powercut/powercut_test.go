package powercut

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// mountDisk is a mounted power-cut file system for one test.
func mountDisk(t *testing.T) *TestMount { return MountForTest(t) }

func write(t *testing.T, path, content string, flag int) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|flag, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
	return f
}

func fsync(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatalf("fsync %s: %v", path, err)
	}
}

// durableFile writes name with content, fsyncs it and its directory.
func (d *TestMount) durableFile(t *testing.T, name, content string) {
	t.Helper()
	write(t, d.Path(name), content, os.O_TRUNC).Close()
	fsync(t, d.Path(name))
	fsync(t, filepath.Dir(d.Path(name)))
}

// wantContent checks a file's content, or its absence when want is "".
func (d *TestMount) wantContent(t *testing.T, name, want string) {
	t.Helper()
	got, err := os.ReadFile(d.Path(name))
	switch {
	case want == "" && !errors.Is(err, os.ErrNotExist):
		t.Errorf("%s: got %q (%v), want it absent", name, got, err)
	case want != "" && string(got) != want:
		t.Errorf("%s: got %q (%v), want %q", name, got, err, want)
	}
}

func TestUnsyncedWritesAreLostAndSyncedOnesKept(t *testing.T) {
	d := mountDisk(t)
	d.durableFile(t, "f", "durable-1")
	f := write(t, d.Path("f"), "", 0)
	if _, err := f.WriteAt([]byte("DURABLE"), 0); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	// Not fsync'd: an overwrite, an append, and a write far past the end.
	for off, s := range map[int64]string{0: "xx", 9: "-tail", 1 << 20: "far"} {
		if _, err := f.WriteAt([]byte(s), off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	d.wantContent(t, "f", "xxRABLE-1-tail"+string(make([]byte, 1<<20-14))+"far")
	d.Cut(t, nil, nil)
	d.wantContent(t, "f", "DURABLE-1")
}

// A torn cut keeps some sectors overwritten since the last fsync and drops
// others, each whole; what was appended past the durable size is dropped.
func TestTornCutKeepsWholeSectorsOnly(t *testing.T) {
	d := mountDisk(t)
	const sectors = 64
	d.durableFile(t, "f", strings.Repeat("a", sectors*sectorSize))
	f := write(t, d.Path("f"), strings.Repeat("b", sectors*sectorSize+100), 0)
	f.Close()
	var n int
	d.FS.CutTorn(func() bool { n++; return n%3 == 0 })
	mustDo(t, d.FS.Close())
	d.FS = nil
	d.mount(t)
	got, err := os.ReadFile(d.Path("f"))
	mustDo(t, err)
	if len(got) != sectors*sectorSize {
		t.Fatalf("size %d after the cut, want the durable %d", len(got), sectors*sectorSize)
	}
	kept := 0
	for i := range sectors {
		sector := string(got[i*sectorSize : (i+1)*sectorSize])
		switch sector {
		case strings.Repeat("b", sectorSize):
			kept++
		case strings.Repeat("a", sectorSize):
		default:
			t.Fatalf("sector %d is torn within itself", i)
		}
	}
	if kept == 0 || kept == sectors || n != sectors {
		t.Errorf("%d of %d sectors kept after %d questions, want some but not all, one question a sector", kept, sectors, n)
	}
}

func TestTruncationIsUndoneUnlessSynced(t *testing.T) {
	d := mountDisk(t)
	d.durableFile(t, "a", "0123456789")
	d.durableFile(t, "b", "0123456789")
	if err := os.Truncate(d.Path("a"), 3); err != nil {
		t.Fatal(err)
	}
	write(t, d.Path("a"), "new", os.O_APPEND).Close()
	write(t, d.Path("b"), "short", os.O_TRUNC).Close()
	fsync(t, d.Path("b"))
	d.Cut(t, nil, nil)
	d.wantContent(t, "a", "0123456789")
	d.wantContent(t, "b", "short")
}

func TestNamespaceChangesNeedTheDirectoryFsynced(t *testing.T) {
	d := mountDisk(t)
	if err := os.Mkdir(d.Path("dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	fsync(t, d.Dir)
	for _, n := range []string{"dir/kept", "dir/unlinked", "dir/renamed", "dir/unlinked-synced", "dir/renamed-synced"} {
		d.durableFile(t, n, n)
	}
	// A new file, its data fsync'd but not its directory: gone after a cut.
	f := write(t, d.Path("dir/created"), "created", 0)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// A new directory whose parent is not fsync'd: gone with all it holds,
	// though the file and the new directory itself were fsync'd.
	if err := os.Mkdir(d.Path("dir/sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	d.durableFile(t, "dir/sub/deep", "deep")
	mustDo(t, os.Remove(d.Path("dir/unlinked")))
	mustDo(t, os.Rename(d.Path("dir/renamed"), d.Path("dir/renamed-to")))
	d.wantContent(t, "dir/renamed-to", "dir/renamed")

	d.Cut(t, nil, nil)
	d.wantContent(t, "dir/kept", "dir/kept")
	d.wantContent(t, "dir/created", "")
	d.wantContent(t, "dir/sub/deep", "")
	d.wantContent(t, "dir/unlinked", "dir/unlinked")
	d.wantContent(t, "dir/renamed", "dir/renamed")
	d.wantContent(t, "dir/renamed-to", "")

	// The same changes, this time made durable by a directory fsync.
	mustDo(t, os.Remove(d.Path("dir/unlinked-synced")))
	mustDo(t, os.Rename(d.Path("dir/renamed-synced"), d.Path("dir/renamed-synced-to")))
	d.durableFile(t, "dir/created", "created")
	fsync(t, d.Path("dir"))
	d.Cut(t, nil, nil)
	d.wantContent(t, "dir/unlinked-synced", "")
	d.wantContent(t, "dir/renamed-synced", "")
	d.wantContent(t, "dir/renamed-synced-to", "dir/renamed-synced")
	d.wantContent(t, "dir/created", "created")
}

// The dead-letter pattern: write a temporary file, fsync, rename into
// place, fsync the directory. Each step cut in turn.
func TestRenameIntoPlaceIsAllOrNothing(t *testing.T) {
	d := mountDisk(t)
	tmp, final := d.Path(".writing"), d.Path("final")
	write(t, tmp, "whole", 0).Close()
	d.Cut(t, nil, nil)
	d.wantContent(t, ".writing", "")

	write(t, tmp, "whole", 0).Close()
	fsync(t, tmp)
	mustDo(t, os.Rename(tmp, final))
	d.Cut(t, nil, nil)
	d.wantContent(t, "final", "")
	d.wantContent(t, ".writing", "")

	write(t, tmp, "whole", 0).Close()
	fsync(t, tmp)
	mustDo(t, os.Rename(tmp, final))
	fsync(t, d.Dir)
	d.Cut(t, nil, nil)
	d.wantContent(t, "final", "whole")
	d.wantContent(t, ".writing", "")
}

func TestRemovedDirectoryComesBackUnlessSynced(t *testing.T) {
	d := mountDisk(t)
	mustDo(t, os.Mkdir(d.Path("gone"), 0o700))
	fsync(t, d.Dir)
	mustDo(t, os.Remove(d.Path("gone")))
	d.Cut(t, nil, nil)
	if info, err := os.Stat(d.Path("gone")); err != nil || !info.IsDir() {
		t.Errorf("a directory removed without a directory fsync did not come back: %v", err)
	}
	mustDo(t, os.Remove(d.Path("gone")))
	fsync(t, d.Dir)
	d.Cut(t, nil, nil)
	if _, err := os.Stat(d.Path("gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a removed, fsync'd directory came back: %v", err)
	}
}

func TestNothingChangesAfterTheCut(t *testing.T) {
	d := mountDisk(t)
	d.durableFile(t, "f", "before")
	f := write(t, d.Path("f"), "", 0)
	defer f.Close()
	d.FS.Cut()
	if _, err := f.WriteAt([]byte("after"), 0); !errors.Is(err, syscall.EIO) {
		t.Errorf("write after the cut: %v, want EIO", err)
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Errorf("fsync after the cut: %v, want EIO", err)
	}
	if _, err := os.Create(d.Path("new")); !errors.Is(err, syscall.EIO) {
		t.Errorf("create after the cut: %v, want EIO", err)
	}
	f.Close()
	mustDo(t, d.FS.Close())
	d.FS = nil
	d.mount(t)
	d.wantContent(t, "f", "before")
}

func TestCleanUnmountKeepsEverything(t *testing.T) {
	d := mountDisk(t)
	mustDo(t, os.MkdirAll(d.Path("a/b"), 0o700))
	write(t, d.Path("a/b/f"), "never fsync'd", 0).Close()
	d.Remount(t)
	d.wantContent(t, "a/b/f", "never fsync'd")
	// What was there at the mount counts as durable.
	d.Cut(t, nil, nil)
	d.wantContent(t, "a/b/f", "never fsync'd")
}

// bbolt, as the queue uses it: pwrite and fdatasync for commits, reads
// through a memory map. A commit made with NoSync (no fdatasync) must be
// lost by a cut, a normal one kept, and the file must open and check clean.
// bbolt runs in a child process: a process that serves a FUSE mount must not
// fault in pages of a file on it (the fault holds the memory map's lock that
// serving the read may need).
func TestBoltCommitsSurviveOnlyWhenSynced(t *testing.T) {
	d := mountDisk(t)
	mustDo(t, os.Mkdir(d.Path("q"), 0o700))
	fsync(t, d.Dir)
	path := d.Path("q/events.db")
	writer := boltChild(t, "write", path)
	if err := writer.Wait(); err != nil {
		t.Fatalf("writing: %v", err)
	}
	// The premise: every commit reached the file before the cut.
	if got := boltCounts(t, path); got != "200 synced, 200 unsynced" {
		t.Fatalf("before the cut: %s, want 200 synced, 200 unsynced", got)
	}
	d.Cut(t, nil, nil)
	if got := boltCounts(t, path); got != "200 synced, 0 unsynced" {
		t.Errorf("after the cut: %s, want 200 synced, 0 unsynced", got)
	}
}

// boltCounts opens and checks the file in a child and counts its records.
func boltCounts(t *testing.T, path string) string {
	t.Helper()
	out, err := boltChild(t, "check", path).Output()
	if err != nil {
		t.Fatalf("checking: %v\n%s", err, out)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	return first
}

// boltChild runs TestBoltChild in a new process, in the given mode.
func boltChild(t *testing.T, mode, path string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestBoltChild$")
	cmd.Env = append(os.Environ(), "POWERCUT_BOLT="+mode, "POWERCUT_BOLT_FILE="+path)
	cmd.Stderr = os.Stderr
	if mode == "write" {
		mustDo(t, cmd.Start())
	}
	return cmd
}

// TestBoltChild is the child of TestBoltCommitsSurviveOnlyWhenSynced.
func TestBoltChild(t *testing.T) {
	path := os.Getenv("POWERCUT_BOLT_FILE")
	switch os.Getenv("POWERCUT_BOLT") {
	case "write":
		writeBolt(t, path)
	case "check":
		checkBolt(t, path)
	default:
		t.Skip("run by TestBoltCommitsSurviveOnlyWhenSynced")
	}
}

func writeBolt(t *testing.T, path string) {
	db, err := bolt.Open(path, 0o600, nil)
	mustDo(t, err)
	fsync(t, filepath.Dir(path))
	put := func(key string) {
		mustDo(t, db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("events"))
			if err != nil {
				return err
			}
			return b.Put([]byte(key), make([]byte, 5000))
		}))
	}
	for i := range 200 {
		put(fmt.Sprintf("synced-%04d", i))
	}
	db.NoSync, db.NoGrowSync = true, true // no fdatasync at all from here
	for i := range 200 {
		put(fmt.Sprintf("unsynced-%04d", i))
	}
	// Exits without closing: the power is cut under an open database.
}

func checkBolt(t *testing.T, path string) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("the file does not open after the cut: %v", err)
	}
	defer db.Close()
	mustDo(t, db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("damaged after the cut: %v", err)
		}
		b := tx.Bucket([]byte("events"))
		if b == nil {
			return errors.New("the bucket committed with fdatasync is gone")
		}
		synced, unsynced := 0, 0
		err := b.ForEach(func(k, _ []byte) error {
			if strings.HasPrefix(string(k), "synced-") {
				synced++
			} else {
				unsynced++
			}
			return nil
		})
		fmt.Printf("%d synced, %d unsynced\n", synced, unsynced)
		return err
	}))
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
