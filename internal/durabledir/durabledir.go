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
		if err := syncDir(abs); err != nil {
			return err
		}
		parent := filepath.Dir(abs)
		if parent == abs {
			return nil
		}
		abs = parent
	}
}

func syncDir(dir string) error {
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
