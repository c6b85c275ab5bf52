package testkit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// MemoryLimit is a memory cgroup of a test's own: the processes started
// through Command may use at most its limit of memory, and the kernel's
// out-of-memory killer ends one that needs more, as a container's limit
// would (Kubernetes' resources.limits.memory is this same cgroup setting).
//
// Both cgroup versions are served, since machines differ: v2's memory.max
// where /sys/fs/cgroup is the unified hierarchy with the memory controller
// on, else v1's memory.limit_in_bytes under /sys/fs/cgroup/memory. Making a
// cgroup needs root (or a delegated hierarchy); without one the test is
// skipped, and fails in CI.
type MemoryLimit struct {
	dir string
	v2  bool
}

const (
	cgroupV2Root = "/sys/fs/cgroup"
	cgroupV1Root = "/sys/fs/cgroup/memory"
)

// NewMemoryLimit makes a cgroup limited to limit bytes, removed when t ends
// (any process still in it is killed first).
func NewMemoryLimit(t testing.TB, limit int64) *MemoryLimit {
	t.Helper()
	m, err := newMemoryLimit(t.Name(), limit)
	if err != nil {
		NeedsOrSkip(t, "a memory cgroup of the test's own: %v", err)
		return nil
	}
	t.Cleanup(m.remove)
	return m
}

func newMemoryLimit(name string, limit int64) (*MemoryLimit, error) {
	base := "netcore-connect-test-" + regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(name, "-") + "-" + strconv.Itoa(os.Getpid())
	m := &MemoryLimit{v2: hasV2Memory()}
	root, file := cgroupV1Root, "memory.limit_in_bytes"
	if m.v2 {
		root, file = cgroupV2Root, "memory.max"
	}
	m.dir = filepath.Join(root, base)
	if err := os.Mkdir(m.dir, 0o755); err != nil {
		return nil, fmt.Errorf("making %s (needs root and a memory cgroup hierarchy): %w", m.dir, err)
	}
	if err := os.WriteFile(filepath.Join(m.dir, file), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		m.remove()
		return nil, fmt.Errorf("setting %s: %w", file, err)
	}
	// No swap either, so that a process past the limit is killed, not
	// swapped out: v2's memory.swap.max, v1's memory+swap limit set to the
	// memory limit (with swappiness 0 where the kernel has no swap
	// accounting). A missing file means no swap accounting, and so nothing
	// to turn off.
	if m.v2 {
		_ = os.WriteFile(filepath.Join(m.dir, "memory.swap.max"), []byte("0"), 0o644)
	} else if os.WriteFile(filepath.Join(m.dir, "memory.memsw.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0o644) != nil {
		_ = os.WriteFile(filepath.Join(m.dir, "memory.swappiness"), []byte("0"), 0o644)
	}
	return m, nil
}

// hasV2Memory says whether /sys/fs/cgroup is the unified hierarchy and its
// children may use the memory controller.
func hasV2Memory() bool {
	b, err := os.ReadFile(filepath.Join(cgroupV2Root, "cgroup.subtree_control"))
	return err == nil && strings.Contains(" "+string(b)+" ", " memory ")
}

// Command is exec.Command(name, args...) run inside the cgroup: a shell
// moves itself into it and then becomes the program, so the program's pid
// is the command's and it is limited from its first allocation.
func (m *MemoryLimit) Command(name string, args ...string) *exec.Cmd {
	script := `echo $$ > "$0" && exec "$@"`
	return exec.Command("/bin/sh", append([]string{"-c", script, filepath.Join(m.dir, "cgroup.procs"), name}, args...)...)
}

// OOMKills is how many processes the kernel killed in the cgroup for
// passing its limit.
func (m *MemoryLimit) OOMKills() (int, error) {
	file := "memory.oom_control" // v1: "oom_kill N"
	if m.v2 {
		file = "memory.events" // v2: "oom_kill N"
	}
	b, err := os.ReadFile(filepath.Join(m.dir, file))
	if err != nil {
		return 0, fmt.Errorf("reading the cgroup's %s: %w", file, err)
	}
	match := regexp.MustCompile(`(?m)^oom_kill (\d+)$`).FindSubmatch(b)
	if match == nil {
		return 0, errors.New("the kernel does not count out-of-memory kills in " + file)
	}
	return strconv.Atoi(string(match[1]))
}

// remove kills what is left in the cgroup and removes it.
func (m *MemoryLimit) remove() {
	if b, err := os.ReadFile(filepath.Join(m.dir, "cgroup.procs")); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
				}
			}
		}
	}
	// A killed process leaves the cgroup only once the kernel has reaped
	// it, and until then the cgroup cannot be removed.
	for i := 0; i < 100 && os.Remove(m.dir) != nil; i++ {
		time.Sleep(20 * time.Millisecond)
	}
}
