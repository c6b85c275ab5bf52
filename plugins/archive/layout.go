package archive

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
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

// The files the output keeps beside an hour file, named with the Unix time
// they were made; the retention removes them with their hour.
//   - damagedInfix: the whole hour file, moved aside because it was damaged
//     (13.damaged-1764321234.jsonl.gz). It holds events of its hour, so a
//     replay reads it.
//   - tornInfix: the torn tail cut off the end of an hour file, copied here
//     first (13.torn-1764321234.jsonl) so that no byte is ever destroyed,
//     even when the judgement "torn, never acknowledged" is wrong. It holds
//     no whole record (the cut is at the end of the last one), so a replay
//     names it and reads nothing from it.
const (
	damagedInfix = ".damaged-"
	tornInfix    = ".torn-"
)

// asideFile is the name of the file kept beside path with infix, at now.
func asideFile(path, infix string, now time.Time) string {
	dir, name := filepath.Split(path)
	hh, ext, _ := strings.Cut(name, ".")
	return filepath.Join(dir, hh+infix+strconv.FormatInt(now.Unix(), 10)+"."+ext)
}

// keptAside is the infix of a file kept beside an hour file, "" for an hour
// file itself.
func keptAside(name string) string {
	for _, infix := range []string{damagedInfix, tornInfix} {
		if strings.Contains(name, infix) {
			return infix
		}
	}
	return ""
}

// parseHourFile reads the hour an archive file holds from its path relative
// to the archive folder ("2026-11-28/13.jsonl", or a file kept aside such
// as "2026-11-28/13.damaged-1764321234.jsonl"); ok is false for any other
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
	if infix := keptAside(hh); infix != "" {
		h, unix, _ := strings.Cut(hh, infix)
		if _, err := strconv.ParseUint(unix, 10, 63); err != nil {
			return time.Time{}, false
		}
		hh = h
	}
	t, err := time.Parse(dateLayout+"T"+hourLayout, date+"T"+hh)
	if err != nil || t.Format(dateLayout) != date || t.Format(hourLayout) != hh {
		return time.Time{}, false
	}
	return t, true
}

// rangeFiles lists the archive files of the hours in [from, to) in the
// order a replay reads them: by hour, and within an hour the files kept
// aside first (they hold its earlier events), then plain, then gzip (an
// hour holds both when gzip was switched on or off within it). Only the
// date folders the range touches are listed, so a range of centuries costs
// no more than the archive holds. A date folder that cannot be listed is in
// unlisted, for the caller to report, and the rest goes on.
func rangeFiles(dir string, from, to time.Time) (files []string, unlisted []error, err error) {
	dates, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("listing the archive folder %s: %w", dir, err)
	}
	type found struct {
		hour time.Time
		rank int
		path string
	}
	var all []found
	for _, d := range dates {
		day, err := time.Parse(dateLayout, d.Name())
		if err != nil || !d.IsDir() || !day.Before(to) || !day.Add(24*time.Hour).After(from) {
			continue
		}
		entries, err := os.ReadDir(filepath.Join(dir, d.Name()))
		if err != nil {
			unlisted = append(unlisted, fmt.Errorf("listing the archive folder %s: %w", filepath.Join(dir, d.Name()), err))
			continue
		}
		for _, e := range entries {
			hour, ok := parseHourFile(d.Name() + "/" + e.Name())
			if !ok || hour.Before(from) || !hour.Before(to) {
				continue
			}
			rank := 0 // kept aside
			switch {
			case keptAside(e.Name()) == "" && strings.HasSuffix(e.Name(), gzipExt):
				rank = 2
			case keptAside(e.Name()) == "":
				rank = 1
			}
			all = append(all, found{hour, rank, filepath.Join(dir, d.Name(), e.Name())})
		}
	}
	slices.SortFunc(all, func(a, b found) int {
		return cmp.Or(a.hour.Compare(b.hour), cmp.Compare(a.rank, b.rank), cmp.Compare(a.path, b.path))
	})
	for _, f := range all {
		files = append(files, f.path)
	}
	return files, unlisted, nil
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
