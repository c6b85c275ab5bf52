package diskqueue

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

func TestHoldLockRefusesAFileInUseAndHoldsOneThatIsNot(t *testing.T) {
	path := queueFileWith(t, 10, 0)
	running, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second}) // as a receiver opens it
	if err != nil {
		t.Fatal(err)
	}
	if _, err := HoldLock(path); !errors.Is(err, ErrLocked) {
		t.Errorf("HoldLock of a file a receiver holds: %v, want ErrLocked", err)
	}
	if _, err := ReadFileStats(path); !errors.Is(err, ErrLocked) {
		t.Errorf("ReadFileStats of a file a receiver holds: %v, want ErrLocked, as HoldLock", err)
	}
	if err := running.Close(); err != nil {
		t.Fatal(err)
	}

	release, err := HoldLock(path)
	if err != nil {
		t.Fatalf("HoldLock of a file no receiver holds: %v", err)
	}
	// While a salvage reads the file, no receiver starts on it.
	if db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 100 * time.Millisecond}); !errors.Is(err, bolterrors.ErrTimeout) {
		if db != nil {
			db.Close()
		}
		t.Errorf("a receiver opened the file during the salvage: %v", err)
	}
	release()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("the lock outlived release: %v", err)
	}
	db.Close()
}

func TestHoldLockLeavesADamagedFileToSalvage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(path, make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second}); err == nil {
		t.Fatal("bbolt opened a file of zeroes: the premise did not hold")
	}
	release, err := HoldLock(path)
	if err != nil {
		t.Fatalf("HoldLock of a damaged file: %v, want it left to Salvage", err)
	}
	release()
}
