package quarantine

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

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
