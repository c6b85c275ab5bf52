package quarantine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/durabledir"
)

// DirName is the quarantine's folder in the data directory, where the
// shipped configs put it and where the quarantine commands look for it.
const DirName = "quarantine"

// lockName is the file a receiver locks while it owns the folder.
const lockName = ".lock"

// Limits bound the quarantine.
type Limits struct {
	MaxBytes          int64 // all posts' files together
	MaxPostsPerClient int
}

// ErrFull is returned by Keep when a post would go past a bound: the
// sender is told to post again later, by when a person may have released
// or dropped what is held.
var ErrFull = errors.New("the quarantine is full")

// ErrOwned is returned by Open when a running receiver owns the folder.
var ErrOwned = errors.New("a running netcore-connect owns the quarantine")

// Client is what the quarantine holds from one address.
type Client struct {
	Address     string
	Posts       int
	Events      int
	Bytes       int64
	Panels      map[string]int // events by panel name
	First, Last time.Time      // when its oldest and newest posts arrived
}

// PanelNames are the client's panels, sorted.
func (c Client) PanelNames() []string { return slices.Sorted(maps.Keys(c.Panels)) }

func (c *Client) add(h Header, size int64) {
	if c.Panels == nil {
		c.Panels = map[string]int{}
	}
	c.Posts++
	c.Events += h.Events
	c.Bytes += size
	for name, n := range h.Panels {
		c.Panels[name] += n
	}
	if c.First.IsZero() || h.ReceivedAt.Before(c.First) {
		c.First = h.ReceivedAt
	}
	if h.ReceivedAt.After(c.Last) {
		c.Last = h.ReceivedAt
	}
}

// Store is a quarantine folder owned by this process.
type Store struct {
	dir    string
	limits Limits
	lock   *os.File

	mu       sync.Mutex
	clients  map[string]*Client
	bytes    int64 // files, and the room reserved for posts being written
	reserved map[string]int
}

// Open makes dir (durably), takes its lock, removes files a crash left half
// written (never answered 200), and reads what it holds.
func Open(dir string, limits Limits) (*Store, error) {
	if err := durabledir.Make(dir); err != nil {
		return nil, fmt.Errorf("quarantine: %w", err)
	}
	lock, err := takeLock(dir)
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, limits: limits, lock: lock, clients: map[string]*Client{}, reserved: map[string]int{}}
	clients, err := scan(dir, true)
	if err != nil {
		lock.Close()
		return nil, err
	}
	for _, c := range clients {
		s.clients[c.Address] = &c
		s.bytes += c.Bytes
	}
	return s, nil
}

// takeLock locks dir's lock file, refusing if another process holds it.
func takeLock(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("quarantine: opening its lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s: %w", dir, ErrOwned)
		}
		return nil, fmt.Errorf("quarantine: locking %s: %w", dir, err)
	}
	return f, nil
}

// Owned says whether a running receiver owns dir.
func Owned(dir string) bool {
	lock, err := takeLock(dir)
	if err != nil {
		return errors.Is(err, ErrOwned)
	}
	lock.Close()
	return false
}

// Close gives the folder up.
func (s *Store) Close() error { return s.lock.Close() }

// Dir is the store's folder.
func (s *Store) Dir() string { return s.dir }

// Keep stores a post durably, or says why not: ErrFull when it would go
// past a bound.
func (s *Store) Keep(h Header, data []byte) error {
	line, err := headerLine(h)
	if err != nil {
		return err
	}
	// The file's exact size, reserved before writing so that posts
	// written at once cannot pass the bound together.
	size := int64(len(line) + len(data))
	if err := s.reserve(h.Client, size); err != nil {
		return err
	}
	_, err = s.write(h, line, data)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unreserveLocked(h.Client)
	if err != nil {
		s.bytes -= size
		return err
	}
	c := s.clients[h.Client]
	if c == nil {
		c = &Client{Address: h.Client}
		s.clients[h.Client] = c
	}
	c.add(h, size)
	return nil
}

// write writes a post into its address's folder, made durably first if it
// is new. The folder is not removed meanwhile: its address has a post
// reserved (forgetLocked).
func (s *Store) write(h Header, line, data []byte) (string, error) {
	folder := filepath.Join(s.dir, folderName(h.Client))
	if _, err := os.Stat(folder); errors.Is(err, os.ErrNotExist) {
		if err := durabledir.Make(folder); err != nil {
			return "", fmt.Errorf("quarantine: %w", err)
		}
	}
	return writePost(folder, h, line, data)
}

// Room says whether a post from client could be kept now, before its body
// is read: ErrFull when one of the bounds is reached.
func (s *Store) Room(client string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roomLocked(client, 0)
}

func (s *Store) roomLocked(client string, size int64) error {
	posts := s.reserved[client]
	if c := s.clients[client]; c != nil {
		posts += c.Posts
	}
	switch {
	case posts >= s.limits.MaxPostsPerClient:
		return fmt.Errorf("%w: %s already has %d posts held, the most one address may have; release or drop them", ErrFull, client, posts)
	case s.bytes+size > s.limits.MaxBytes || s.bytes >= s.limits.MaxBytes:
		return fmt.Errorf("%w: it holds %d bytes of its %d; release or drop what it holds", ErrFull, s.bytes, s.limits.MaxBytes)
	}
	return nil
}

func (s *Store) reserve(client string, size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.roomLocked(client, size); err != nil {
		return err
	}
	s.bytes += size
	s.reserved[client]++
	return nil
}

// unreserveLocked ends a reservation, keeping no key for an address with
// none left: the map holds the addresses being written, not every address
// ever seen.
func (s *Store) unreserveLocked(client string) {
	if s.reserved[client]--; s.reserved[client] <= 0 {
		delete(s.reserved, client)
	}
}

// Clients is what the store holds, by address, newest sender first.
func (s *Store) Clients() []Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Client, 0, len(s.clients))
	for _, c := range s.clients {
		cc := *c
		cc.Panels = maps.Clone(c.Panels)
		out = append(out, cc)
	}
	sortClients(out)
	return out
}

// Bytes is the size of every post held.
func (s *Store) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Posts are the files of client's posts, oldest first.
func (s *Store) Posts(client string) ([]string, error) {
	return postFiles(filepath.Join(s.dir, folderName(client)))
}

// Remove deletes a post's file, once its events are stored elsewhere (or
// dropped), durably, and says what the post was.
func (s *Store) Remove(path string) (Header, error) {
	h, size, err := readHeader(path)
	if err != nil {
		return h, err
	}
	if err := os.Remove(path); err != nil {
		return h, fmt.Errorf("removing quarantined post: %w", err)
	}
	// Gone from the folder, if not yet durably: out of the summary either way.
	s.forget(h, size, filepath.Dir(path))
	if err := durabledir.SyncDir(filepath.Dir(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return h, fmt.Errorf("removing quarantined post %s (check the disk): %w", path, err)
	}
	return h, nil
}

// forget takes a removed post out of the summary, and removes its address's
// folder once it holds nothing and nothing is being written into it, so
// that addresses seen once leave nothing behind.
func (s *Store) forget(h Header, size int64, folder string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bytes -= size
	c := s.clients[h.Client]
	if c == nil {
		return
	}
	if c.Posts--; c.Posts <= 0 {
		delete(s.clients, h.Client)
		if s.reserved[h.Client] == 0 {
			_ = os.Remove(folder) // fails, harmlessly, if anything is left in it
		}
		return
	}
	c.Events -= h.Events
	c.Bytes -= size
	for name, n := range h.Panels {
		if c.Panels[name] -= n; c.Panels[name] <= 0 {
			delete(c.Panels, name)
		}
	}
}

// Drop deletes every post of client, saying how many posts and events,
// until ctx ends.
func (s *Store) Drop(ctx context.Context, client string) (Result, error) {
	res := Result{Op: OpDrop, Client: client}
	paths, err := s.Posts(client)
	if err != nil {
		return res, err
	}
	for _, path := range paths {
		if err := ctx.Err(); err != nil {
			return res, err // the rest stays held
		}
		h, err := s.Remove(path)
		if err != nil {
			return res, err
		}
		res.Posts++
		res.Events += h.Events
	}
	return res, nil
}
