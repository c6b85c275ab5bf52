package netcore

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"
)

// rejectedPost is one line of the rejected-posts file: enough to see what a
// sender posted and why it was refused, and to post it again by hand.
type rejectedPost struct {
	Time        time.Time `json:"time"`
	RequestID   string    `json:"request_id"`
	ClientIP    string    `json:"client_ip"`
	Status      int       `json:"status"`
	Reason      string    `json:"reason"`
	ContentType string    `json:"content_type,omitempty"`
	BodyBytes   int64     `json:"body_bytes"`
	// Body holds the body when it is text; BodyBase64 when it is not.
	Body       string `json:"body,omitempty"`
	BodyBase64 []byte `json:"body_base64,omitempty"`
}

// rejectedFile appends rejected posts as JSON lines. It is bounded: when the
// file would pass maxBytes it is renamed to NAME.1 (replacing the previous
// one) and a new file is started, so at most twice maxBytes is kept.
type rejectedFile struct {
	path     string
	maxBytes int64

	mu   sync.Mutex
	f    *os.File
	size int64
}

func newRejectedFile(path string, maxBytes int64) *rejectedFile {
	return &rejectedFile{path: path, maxBytes: maxBytes}
}

func (r *rejectedFile) keep(p rejectedPost, body []byte) error {
	if utf8.Valid(body) {
		p.Body = string(body)
	} else {
		p.BodyBase64 = body
	}
	line, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encoding rejected post: %w", err)
	}
	line = append(line, '\n')

	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		if err := r.open(); err != nil {
			return err
		}
	}
	if r.size > 0 && r.size+int64(len(line)) > r.maxBytes {
		if err := r.rotate(); err != nil {
			return err
		}
	}
	n, err := r.f.Write(line)
	r.size += int64(n)
	if err != nil {
		return fmt.Errorf("writing rejected post to %s: %w", r.path, err)
	}
	return nil
}

func (r *rejectedFile) open() error {
	if err := os.MkdirAll(filepath.Dir(r.path), 0o750); err != nil {
		return fmt.Errorf("creating folder for rejected posts: %w", err)
	}
	f, err := os.OpenFile(r.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("opening rejected posts file: %w", err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("reading size of %s: %w", r.path, err)
	}
	r.f, r.size = f, info.Size()
	return nil
}

func (r *rejectedFile) rotate() error {
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", r.path, err)
	}
	r.f = nil
	if err := os.Rename(r.path, r.path+".1"); err != nil {
		return fmt.Errorf("rotating %s: %w", r.path, err)
	}
	return r.open()
}

func (r *rejectedFile) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	return err
}
