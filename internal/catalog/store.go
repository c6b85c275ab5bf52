package catalog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/netcore-connect/netcore-connect/internal/durabledir"
)

// DirName is the catalog's folder in the data directory, and FileName its
// file there.
const (
	DirName  = "catalog"
	FileName = "catalog.json"
)

// Load reads the catalog kept in dir; none kept is an empty catalog.
func Load(dir string, opts Options) (*Catalog, error) {
	c := New(opts)
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the catalog: %w", err)
	}
	if err := json.Unmarshal(b, &c.state); err != nil {
		return nil, fmt.Errorf("reading the catalog %s: %w (move it aside to start a new one)", filepath.Join(dir, FileName), err)
	}
	for _, p := range c.state.Panels {
		c.index[p.Name] = p
		c.bytes += int64(panelCost + len(p.Name))
		p.index = make(map[string]*Path, len(p.Paths))
		for _, f := range p.Paths {
			parent := parentPath(f.Path) // a file from before Parent was kept
			if f.Parent != nil {
				parent = *f.Parent
			}
			f.parent, f.missingAt = p.index[parent], -1
			p.index[f.Path] = f
			c.bytes += int64(pathCost + 2*len(f.Path) + len(f.Example))
		}
	}
	return c, nil
}

// parentPath is the path of the object or array holding path's value.
func parentPath(path string) string {
	if p, ok := strings.CutSuffix(path, "[]"); ok {
		return p
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

// Save writes the catalog to dir atomically: a reader (`catalog show`
// beside the running receiver) finds the old file or the new one whole,
// and a crash leaves one or the other.
func (c *Catalog) Save(dir string) error {
	c.mu.Lock()
	b, err := json.Marshal(&c.state)
	c.dirty, c.flagged = false, false
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("encoding the catalog: %w", err)
	}
	if err := durabledir.Make(dir); err != nil {
		return err
	}
	if err := durabledir.WriteFile(filepath.Join(dir, FileName), b); err != nil {
		c.mu.Lock()
		c.dirty, c.flagged = true, true // tried again at the next tick, not the next post
		c.mu.Unlock()
		return fmt.Errorf("saving the catalog: %w", err)
	}
	return nil
}

// unsaved says what changed since the last save: anything, and changes
// flagged (saved sooner).
func (c *Catalog) unsaved() (dirty, flagged bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dirty, c.flagged
}
