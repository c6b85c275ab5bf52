package quarantine

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	// The file's size, within a few bytes (the header line): reserved
	// before writing so that posts written at once cannot pass the bound.
	size := int64(len(data) + 256)
	if err := s.reserve(h.Client, size); err != nil {
		return err
	}
	folder := filepath.Join(s.dir, folderName(h.Client))
	_, written, err := s.write(folder, h, data)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bytes -= size
	s.reserved[h.Client]--
	if err != nil {
		return err
	}
	s.bytes += written
	c := s.clients[h.Client]
	if c == nil {
		c = &Client{Address: h.Client}
		s.clients[h.Client] = c
	}
	c.add(h, written)
	return nil
}

func (s *Store) write(folder string, h Header, data []byte) (string, int64, error) {
	if _, err := os.Stat(folder); errors.Is(err, os.ErrNotExist) {
		if err := durabledir.Make(folder); err != nil {
			return "", 0, fmt.Errorf("quarantine: %w", err)
		}
	}
	return writePost(folder, h, data)
}

func (s *Store) reserve(client string, size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	posts := s.reserved[client]
	if c := s.clients[client]; c != nil {
		posts += c.Posts
	}
	switch {
	case posts >= s.limits.MaxPostsPerClient:
		return fmt.Errorf("%w: %s already has %d posts held, the most one address may have; release or drop them", ErrFull, client, posts)
	case s.bytes+size > s.limits.MaxBytes:
		return fmt.Errorf("%w: it holds %d bytes of its %d; release or drop what it holds", ErrFull, s.bytes, s.limits.MaxBytes)
	}
	s.bytes += size
	s.reserved[client]++
	return nil
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
// dropped), durably.
func (s *Store) Remove(path string) error {
	h, size, err := readHeader(path)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing quarantined post: %w", err)
	}
	if err := syncFolder(filepath.Dir(path)); err != nil {
		return fmt.Errorf("removing quarantined post %s (check the disk): %w", path, err)
	}
	s.forget(h, size)
	return nil
}

// forget takes a removed post out of the summary.
func (s *Store) forget(h Header, size int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bytes -= size
	c := s.clients[h.Client]
	if c == nil {
		return
	}
	if c.Posts--; c.Posts <= 0 {
		delete(s.clients, h.Client)
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

// Drop deletes every post of client, saying how many posts and events.
func (s *Store) Drop(client string) (Result, error) {
	res := Result{Op: OpDrop, Client: client}
	paths, err := s.Posts(client)
	if err != nil {
		return res, err
	}
	for _, path := range paths {
		h, _, err := readHeader(path)
		if err == nil {
			err = s.Remove(path)
		}
		if err != nil {
			return res, err
		}
		res.Posts++
		res.Events += h.Events
	}
	return res, nil
}

// List reads what dir holds, by address, newest sender first. It takes
// no lock: it reads beside a running receiver.
func List(dir string) ([]Client, error) {
	clients, err := scan(dir, false)
	sortClients(clients)
	return clients, err
}

// scan reads every post's header under dir; owner (the lock held) also
// removes files left half written.
func scan(dir string, owner bool) ([]Client, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the quarantine %s: %w", dir, err)
	}
	var clients []Client
	for _, e := range entries {
		if !e.IsDir() || e.Name() == requestsName {
			continue
		}
		folder := filepath.Join(dir, e.Name())
		if owner {
			if err := removeHalfWritten(folder); err != nil {
				return nil, err
			}
		}
		c, err := scanFolder(folder)
		if err != nil {
			return nil, err
		}
		if c.Posts > 0 {
			clients = append(clients, c)
		}
	}
	return clients, nil
}

func scanFolder(folder string) (Client, error) {
	var c Client
	paths, err := postFiles(folder)
	for _, path := range paths {
		h, size, herr := readHeader(path)
		if errors.Is(herr, os.ErrNotExist) {
			continue // released or dropped while it was read
		}
		if herr != nil {
			return c, herr
		}
		c.Address = h.Client
		c.add(h, size)
	}
	return c, err
}

// postFiles are the post files in folder, oldest first.
func postFiles(folder string) ([]string, error) {
	entries, err := os.ReadDir(folder)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the quarantine folder %s: %w", folder, err)
	}
	var paths []string
	for _, e := range entries { // ReadDir sorts by name: oldest first
		if strings.HasSuffix(e.Name(), postExt) {
			paths = append(paths, filepath.Join(folder, e.Name()))
		}
	}
	return paths, nil
}

func removeHalfWritten(folder string) error {
	tmps, err := filepath.Glob(filepath.Join(folder, "*"+tmpExt))
	for _, tmp := range tmps {
		if err == nil {
			err = os.Remove(tmp)
		}
	}
	if err != nil {
		return fmt.Errorf("quarantine: removing a post left half written in %s: %w", folder, err)
	}
	return nil
}

func sortClients(cs []Client) {
	slices.SortFunc(cs, func(a, b Client) int { return b.Last.Compare(a.Last) })
}
