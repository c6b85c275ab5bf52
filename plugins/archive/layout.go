package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// The archive's layout, shared by the output that writes it and the input
// that replays it: <dir>/<UTC date>/<UTC hour>.jsonl, or .jsonl.gz.
const (
	dateLayout = "2006-01-02"
	hourLayout = "15"
	plainExt   = ".jsonl"
	gzipExt    = ".jsonl.gz"
)

// hourFile is where the events of the UTC hour holding t are archived.
func hourFile(dir string, t time.Time, gzipped bool) string {
	t = t.UTC()
	ext := plainExt
	if gzipped {
		ext = gzipExt
	}
	return filepath.Join(dir, t.Format(dateLayout), t.Format(hourLayout)+ext)
}

// hourFiles are the files that may hold the hour starting at h, in the
// order they are read: plain, then gzip (an hour holds both when gzip was
// switched on or off within it).
func hourFiles(dir string, h time.Time) []string {
	return []string{hourFile(dir, h, false), hourFile(dir, h, true)}
}

// parseHourFile reads the hour an archive file holds from its path relative
// to the archive folder ("2026-11-28/13.jsonl"); ok is false for any other
// file, which the archive never touches.
func parseHourFile(rel string) (hour time.Time, ok bool) {
	date, name, found := strings.Cut(filepath.ToSlash(rel), "/")
	if !found {
		return time.Time{}, false
	}
	hh, found := strings.CutSuffix(name, gzipExt)
	if !found {
		if hh, found = strings.CutSuffix(name, plainExt); !found {
			return time.Time{}, false
		}
	}
	t, err := time.Parse(dateLayout+"T"+hourLayout, date+"T"+hh)
	if err != nil || t.Format(dateLayout) != date || t.Format(hourLayout) != hh {
		return time.Time{}, false
	}
	return t, true
}

// removeExpired deletes the archive files of hours that ended more than
// keep before now, and the date folders left empty. Files that are not
// archive files are left alone. It returns the number of files removed.
func removeExpired(dir string, keep time.Duration, now time.Time) (int, error) {
	cutoff := now.Add(-keep)
	removed := 0
	dates, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("listing the archive for retention: %w", err)
	}
	for _, date := range dates {
		if !date.IsDir() {
			continue
		}
		n, err := removeExpiredInDate(dir, date.Name(), cutoff)
		removed += n
		if err != nil {
			return removed, err
		}
	}
	return removed, nil
}

func removeExpiredInDate(dir, date string, cutoff time.Time) (int, error) {
	removed := 0
	entries, err := os.ReadDir(filepath.Join(dir, date))
	if err != nil {
		return 0, fmt.Errorf("listing the archive for retention: %w", err)
	}
	for _, e := range entries {
		hour, ok := parseHourFile(date + "/" + e.Name())
		if !ok || e.IsDir() || hour.Add(time.Hour).After(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, date, e.Name())); err != nil {
			return removed, fmt.Errorf("removing an expired archive file: %w", err)
		}
		removed++
	}
	if removed > 0 && removed == len(entries) {
		// Only a folder this left empty: anything else an operator put there stays.
		if err := os.Remove(filepath.Join(dir, date)); err != nil && !errors.Is(err, syscall.ENOTEMPTY) {
			return removed, fmt.Errorf("removing an empty archive folder: %w", err)
		}
	}
	return removed, nil
}

// syncDir makes the creation or removal of entries in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
