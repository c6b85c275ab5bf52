package durabledir

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"

	"github.com/netcore-connect/netcore-connect/internal/testing/powercut"
)

// A folder made by Make, and a file fsync'd in it, survive a power cut; the
// same made with os.MkdirAll do not (the premise: the file system does
// forget names whose directory was not fsync'd).
func TestMadeFoldersSurviveAPowerCut(t *testing.T) {
	if err := powercut.Usable(); err != nil {
		testkit.NeedsOrSkip(t, "the power-cut file system cannot be mounted here: %v", err)
	}
	base := t.TempDir()
	backing, mnt := filepath.Join(base, "disk"), filepath.Join(base, "mnt")
	for _, p := range []string{backing, mnt} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	fsys, err := powercut.Mount(backing, mnt)
	if err != nil {
		t.Fatal(err)
	}
	made, plain := filepath.Join(mnt, "made", "a", "b"), filepath.Join(mnt, "plain", "a", "b")
	if err := Make(made); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(plain, 0o750); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{made, plain} {
		writeSynced(t, filepath.Join(dir, "f"))
	}
	fsys.Cut()
	if err := fsys.Close(); err != nil {
		t.Fatal(err)
	}
	if fsys, err = powercut.Mount(backing, mnt); err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	if _, err := os.Stat(filepath.Join(made, "f")); err != nil {
		t.Errorf("a file in a folder made by Make is gone after a power cut: %v", err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "plain")); !os.IsNotExist(err) {
		t.Errorf("a folder made by os.MkdirAll survived a power cut (%v): the test proves nothing", err)
	}
}

// writeSynced creates a file, fsyncs it and then its folder.
func writeSynced(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := SyncDir(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
}
