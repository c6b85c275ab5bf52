package archive

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// appending is an hour file open for one batch.
type appending struct {
	path    string
	file    *os.File
	start   int64 // its length before the batch: where a failed batch is cut back to
	gzipped bool
}

// open opens an hour file for appending, creating it (durably) if needed.
// The first time since the start, a file found is checked first: a torn
// tail is cut off, a damaged file moved aside (checkFound).
func (a *archiveOutput) open(path string) (*appending, error) {
	gzipped := filepath.Ext(path) == ".gz"
	first := !a.checked[path]
	if first {
		if err := a.checkFound(path, gzipped); err != nil {
			return nil, err
		}
	}
	if err := ensureFile(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the archive file %s: %w", path, err)
	}
	if first {
		// The names of a file new or found (a process killed between
		// creating it and syncing its folders leaves a name a power cut can
		// still take) are made durable once, before its first batch is
		// acknowledged.
		if err := syncFolders(path); err != nil {
			f.Close()
			return nil, err
		}
	}
	a.checked[path] = true
	start, err := f.Seek(0, 2)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("seeking to the end of %s: %w", path, err)
	}
	return &appending{path: path, file: f, start: start, gzipped: gzipped}, nil
}

// checkFound checks an hour file found at start before appending to it.
// Only a torn tail is cut off: the bytes after the end of the last whole
// record, which can only be the batch being written when the process died,
// never acknowledged. Damage can look the same (a bit flipped near the end
// of the last member, a final newline flipped), so the tail is first kept
// aside and no byte is destroyed whichever it was. A file with damage
// anywhere else is moved aside whole.
func (a *archiveOutput) checkFound(path string, gzipped bool) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening the archive file %s: %w", path, err)
	}
	defer f.Close()
	l, err := examine(f, gzipped)
	if err != nil {
		return err
	}
	if len(l.damaged) > 0 {
		return a.moveAside(path, l)
	}
	if l.torn == l.size {
		return nil
	}
	kept, err := a.keepTornTail(f, path, l)
	if err != nil {
		return err
	}
	a.log.Warnf("Cutting a torn record of %d bytes off the end of %s, kept as %s (a write cut short by a crash, never acknowledged: its events are archived again; if nothing crashed, the end of the file was damaged and those bytes are there to recover)", l.size-l.torn, path, filepath.Base(kept))
	if err := f.Truncate(l.torn); err != nil {
		return fmt.Errorf("cutting the torn end off %s: %w", path, err)
	}
	return nil
}

// keepTornTail copies the torn tail of f to its own file beside it,
// durably (the file and its folder fsync'd), before it is cut off.
func (a *archiveOutput) keepTornTail(f *os.File, path string, l layout) (string, error) {
	kept := asideFile(path, tornInfix, a.now())
	out, err := os.OpenFile(kept, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return "", fmt.Errorf("keeping the torn end of %s before cutting it (the retry picks another name if it is taken; check the folder's permissions and free space): %w", path, err)
	}
	_, err = io.Copy(out, io.NewSectionReader(f, l.torn, l.size-l.torn))
	if err == nil {
		err = a.syncFile(out)
	}
	if err = errors.Join(err, out.Close()); err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(kept)
		return "", fmt.Errorf("keeping the torn end of %s in %s (is the disk full?): %w", path, kept, err)
	}
	return kept, nil
}

// moveAside renames a damaged hour file to its aside name, durably, so
// that its hour starts a new file and not a byte of it is lost: a replay
// reads the aside file's whole members and reports the rest.
func (a *archiveOutput) moveAside(path string, l layout) error {
	aside := asideFile(path, damagedInfix, a.now())
	if _, err := os.Stat(aside); !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("moving the damaged archive file %s aside: %s is taken (the retry will pick another name)", path, aside)
	}
	if err := os.Rename(path, aside); err != nil {
		return fmt.Errorf("moving the damaged archive file %s aside (check the folder's permissions): %w", path, err)
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("syncing the archive folder %s: %w", filepath.Dir(path), err)
	}
	a.damaged.Incr(1)
	for _, d := range l.damaged {
		a.log.Errorf("Moved the damaged archive file %s aside as %s, whole: from byte %d to byte %d it cannot be read (%v), at least %d event(s) there are lost; its other events are kept and replayed from it",
			path, filepath.Base(aside), d.start, d.end, d.cause, d.lines)
	}
	return nil
}

// ensureFile creates path and its date folder if missing; open makes
// their names durable.
func ensureFile(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("checking the archive file %s: %w", path, err)
	}
	if err := os.Mkdir(filepath.Dir(path), 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating the archive folder %s: %w", filepath.Dir(path), err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("creating the archive file %s: %w", path, err)
	}
	return f.Close()
}

// syncFolders syncs the date folder of an hour file and the archive folder
// holding it, so that both names are durable.
func syncFolders(path string) error {
	for _, dir := range []string{filepath.Dir(path), filepath.Dir(filepath.Dir(path))} {
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("syncing the archive folder %s: %w", dir, err)
		}
	}
	return nil
}

func (f *appending) write(lines []byte) error {
	var err error
	if f.gzipped {
		zw := gzip.NewWriter(f.file)
		if _, err = zw.Write(lines); err == nil {
			err = zw.Close()
		}
	} else {
		_, err = f.file.Write(lines)
	}
	if err != nil {
		return fmt.Errorf("appending to %s (is the disk full?): %w", f.file.Name(), err)
	}
	return nil
}

func (f *appending) close() { f.file.Close() }

// rollback cuts what this batch appended off every file it touched, so
// that the retried batch does not leave half of itself twice.
func (a *archiveOutput) rollback(files []*appending, cause error) error {
	for _, f := range files {
		if err := f.file.Truncate(f.start); err != nil {
			a.log.Errorf("Cutting a failed batch off %s: %v", f.path, err)
		}
		// Whatever is left, the next open checks the tail again.
		delete(a.checked, f.path)
	}
	return cause
}
