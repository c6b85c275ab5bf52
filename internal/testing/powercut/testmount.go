package powercut

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"
)

// TestMount is a power-cut file system mounted for a test at Dir, over the
// folder Backing: what the tests of this package and the end-to-end tests
// share.
type TestMount struct {
	Backing, Dir string
	FS           *FS // nil while unmounted
}

// MountForTest mounts a fresh power-cut file system for t, and unmounts it
// when t ends. Where FUSE cannot be mounted (not root, no /dev/fuse) the test
// is skipped, saying why.
func MountForTest(t testing.TB) *TestMount {
	t.Helper()
	if err := Usable(); err != nil {
		testkit.NeedsOrSkip(t, "power-cut tests need a FUSE mount (as root, with /dev/fuse): %v", err)
	}
	base := t.TempDir()
	m := &TestMount{Backing: filepath.Join(base, "disk"), Dir: filepath.Join(base, "mnt")}
	for _, p := range []string{m.Backing, m.Dir} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	m.mount(t)
	t.Cleanup(func() {
		if m.FS != nil {
			if err := m.FS.Close(); err != nil {
				t.Error(err)
			}
		}
	})
	return m
}

func (m *TestMount) mount(t testing.TB) {
	t.Helper()
	fs, err := Mount(m.Backing, m.Dir)
	if err != nil {
		t.Fatal(err)
	}
	m.FS = fs
}

// Path is name inside the mount.
func (m *TestMount) Path(name string) string { return filepath.Join(m.Dir, name) }

// Cut cuts the power: the file system stops taking changes, down runs (a
// process on it is killed, say), what was not durable is dropped (but the
// overwritten blocks kept says yes to, for a torn cut; kept nil tears none),
// and the file system is mounted again with a cold page cache.
func (m *TestMount) Cut(t testing.TB, kept func() bool, down func()) {
	t.Helper()
	if kept == nil {
		m.FS.Cut()
	} else {
		m.FS.CutTorn(kept)
	}
	if down != nil {
		down()
	}
	m.Remount(t)
}

// Remount unmounts (after a cut, dropping what was not durable) and mounts
// again.
func (m *TestMount) Remount(t testing.TB) {
	t.Helper()
	if err := m.FS.Close(); err != nil {
		t.Fatal(err)
	}
	m.FS = nil
	m.mount(t)
}
