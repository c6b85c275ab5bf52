package quarantine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// The operations a person asks for.
const (
	OpRelease = "release"
	OpDrop    = "drop"
)

// requestsName is the folder of requests and their results.
const requestsName = "requests"

const (
	requestExt = ".request"
	resultExt  = ".result"
)

// Request asks the receiver that owns the folder to release or drop the
// posts of one address.
type Request struct {
	Op     string `json:"op"`
	Client string `json:"client"`
}

// Result says what a request did.
type Result struct {
	Op     string `json:"op"`
	Client string `json:"client"`
	Posts  int    `json:"posts"`
	Events int    `json:"events"`
	Error  string `json:"error,omitempty"` // what stopped it; the posts not done are still held
	// Allowed says the address is in the receiver's allowlist already, so
	// that its next posts are delivered, not quarantined.
	Allowed bool `json:"allowed,omitempty"`
}

func (r Request) name() string { return r.Op + "-" + folderName(r.Client) }

// errNotARequest is a request file the commands did not write.
var errNotARequest = errors.New("not a request netcore-connect quarantine writes")

// check says whether r, read from path, is one the commands write: an
// operation, an IP address (so no folder name outside the quarantine's is
// ever formed from it), and the file's name made from them.
func (r Request) check(path string) error {
	addr, err := netip.ParseAddr(r.Client)
	if err != nil || addr.String() != r.Client || (r.Op != OpRelease && r.Op != OpDrop) || filepath.Base(path) != r.name()+requestExt {
		return errNotARequest
	}
	return nil
}

// Ask leaves req for the receiver that owns dir and waits for its result,
// until ctx ends: the request then stays, and is served when a receiver
// next runs on dir.
func Ask(ctx context.Context, dir string, req Request) (Result, error) {
	folder := filepath.Join(dir, requestsName)
	if err := os.MkdirAll(folder, 0o750); err != nil {
		return Result{}, fmt.Errorf("quarantine: %w", err)
	}
	result := filepath.Join(folder, req.name()+resultExt)
	if err := os.Remove(result); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Result{}, fmt.Errorf("quarantine: removing an old result: %w", err)
	}
	if err := writeJSON(filepath.Join(folder, req.name()+requestExt), req); err != nil {
		return Result{}, err
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		var res Result
		raw, err := os.ReadFile(result)
		if err == nil {
			_ = os.Remove(result)
			if err := json.Unmarshal(raw, &res); err != nil {
				return res, fmt.Errorf("quarantine: reading the result of %s: %w", req.name(), err)
			}
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, fmt.Errorf("no answer from the receiver yet (%w); the request stays and is served when it runs", ctx.Err())
		case <-tick.C:
		}
	}
}

// Requests are the requests waiting in the store's folder. One that cannot
// be read (written by hand, or garbled) is removed and named in the error.
func (s *Store) Requests() ([]Request, error) {
	paths, err := filepath.Glob(filepath.Join(s.dir, requestsName, "*"+requestExt))
	if err != nil {
		return nil, fmt.Errorf("quarantine: listing requests: %w", err)
	}
	var reqs []Request
	var bad error
	for _, path := range paths {
		var req Request
		raw, err := os.ReadFile(path)
		if err == nil {
			err = json.Unmarshal(raw, &req)
		}
		if err == nil {
			err = req.check(path)
		}
		if err != nil {
			bad = errors.Join(bad, fmt.Errorf("quarantine request %s removed unserved (%w): ask with netcore-connect quarantine release or drop instead", path, err), os.Remove(path))
			continue
		}
		reqs = append(reqs, req)
	}
	return reqs, bad
}

// Answer writes req's result and removes req: the result first, so that a
// crash between them serves the request again rather than losing it.
func (s *Store) Answer(req Request, res Result) error {
	folder := filepath.Join(s.dir, requestsName)
	if err := writeJSON(filepath.Join(folder, req.name()+resultExt), res); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(folder, req.name()+requestExt)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("quarantine: removing request %s: %w", req.name(), err)
	}
	return nil
}

// writeJSON writes v to path whole or not at all (by rename).
func writeJSON(path string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("quarantine: %w", err)
	}
	tmp := path + tmpExt
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return fmt.Errorf("quarantine: writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("quarantine: writing %s: %w", path, err)
	}
	return nil
}
