package durabledir

import (
	"fmt"
	"os"
	"path/filepath"
)

// Make creates dir and any missing parents, then fsyncs dir and every
// directory above it, so that the whole path is durable. It is called once
// at start, before anything written under dir is acknowledged.
func Make(dir string) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("creating folder %s: %w", dir, err)
	}
	return SyncChain(dir)
}

// SyncChain fsyncs dir and every directory above it up to the root.
func SyncChain(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("finding folder %s: %w", dir, err)
	}
	for {
		if err := SyncDir(abs); err != nil {
			return err
		}
		parent := filepath.Dir(abs)
		if parent == abs {
			return nil
		}
		abs = parent
	}
}

// SyncDir fsyncs dir, so that the names in it survive a power cut.
func SyncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening folder %s to sync it: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing folder %s (check the disk): %w", dir, err)
	}
	return nil
}

// WriteFile writes parts to path whole or not at all, durably: into a new
// file beside it, fsync'd, renamed over path, then the folder fsync'd. A
// reader finds the old file or the new one; a crash leaves one or the
// other, and at worst path+".tmp", which the next write replaces.
func WriteFile(path string, parts ...[]byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("creating %s: %w", tmp, err)
	}
	for _, p := range parts {
		if err == nil {
			_, err = f.Write(p)
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = SyncDir(filepath.Dir(path))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s (check the disk): %w", path, err)
	}
	return nil
}
