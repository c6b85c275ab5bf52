package netns

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// namedDir is where `ip netns add` keeps a handle on each namespace.
const namedDir = "/run/netns"

// Do runs fn on an OS thread switched into the host's namespace. A socket
// fn opens stays in that namespace for its whole life, whichever thread
// uses it later.
func (h *Host) Do(fn func() error) error {
	errc := make(chan error, 1)
	// A goroutine of its own: if its thread cannot be switched back, it
	// exits still locked and the runtime throws the thread away, so no
	// other goroutine ever runs in the wrong namespace.
	go func() {
		runtime.LockOSThread()
		back, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- fmt.Errorf("opening this thread's namespace: %w", err)
			return
		}
		defer back.Close()
		target, err := os.Open(filepath.Join(namedDir, h.Name))
		if err != nil {
			errc <- fmt.Errorf("opening namespace %s (was the lab closed?): %w", h.Name, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("entering namespace %s (needs root): %w", h.Name, err)
			return
		}
		err = fn()
		if unix.Setns(int(back.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// Listen opens a listening socket inside the host.
func (h *Host) Listen(network, address string) (net.Listener, error) {
	var ln net.Listener
	err := h.Do(func() (err error) {
		ln, err = net.Listen(network, address)
		return err
	})
	return ln, err
}

// DialContext connects from inside the host, as a process running there
// would. Its signature fits http.Transport.DialContext.
func (h *Host) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := h.Do(func() (err error) {
		var d net.Dialer
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// Dial connects from inside the host; with it a Host is a nats.CustomDialer.
func (h *Host) Dial(network, address string) (net.Conn, error) {
	return h.DialContext(context.Background(), network, address)
}

// writeSysctl sets a value under /proc/sys/net for the host's namespace
// (that file system shows the namespace of the thread that opens it).
func (h *Host) writeSysctl(key, value string) error {
	return h.Do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys/net", key), []byte(value), 0o644)
	})
}
