package netns

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"
)

func newLab(t *testing.T) *Lab {
	t.Helper()
	if err := Check(); err != nil {
		testkit.NeedsOrSkip(t, "no network namespaces here: %v", err)
	}
	l, err := New("nstest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

// Two hosts on a bridge talk; a cut link silences one, without an error,
// and healing it lets the same connection carry on.
func TestCutLinkSilencesAHostAndHealRestoresIt(t *testing.T) {
	l := newLab(t)
	if err := l.AddBridge("br0"); err != nil {
		t.Fatal(err)
	}
	a, b := mustHost(t, l, "a"), mustHost(t, l, "b")
	link, err := l.Attach(a, "br0", "eth0", "10.213.9.1/24")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Attach(b, "br0", "eth0", "10.213.9.2/24"); err != nil {
		t.Fatal(err)
	}
	ln, err := b.Listen("tcp", "10.213.9.2:7000")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go echo(ln)

	c, err := a.DialContext(context.Background(), "tcp", "10.213.9.2:7000")
	if err != nil {
		t.Fatalf("dialing across the bridge: %v", err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got := roundTrip(t, c, r, "before\n", 5*time.Second); got != "before\n" {
		t.Fatalf("echo before the cut: %q, %v", got, err)
	}

	if err := link.Cut(); err != nil {
		t.Fatal(err)
	}
	if got := roundTrip(t, c, r, "during\n", 2*time.Second); got != "" {
		t.Fatalf("an answer came through a cut link: %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if c2, err := a.DialContext(ctx, "tcp", "10.213.9.2:7000"); err == nil {
		c2.Close()
		t.Fatal("a new connection was made through a cut link")
	}

	if err := link.Heal(); err != nil {
		t.Fatal(err)
	}
	// The line sent during the cut is retransmitted and answered.
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if got, err := r.ReadString('\n'); got != "during\n" {
		t.Fatalf("the connection did not carry on after healing: %q, %v", got, err)
	}
}

// A lab's hosts have only the routes the test gave them: no default route,
// so that nothing in them can reach a real network; and the test's own
// namespace is untouched.
func TestHostsHaveNoWayOut(t *testing.T) {
	before := rootNetwork(t)
	l := newLab(t)
	if err := l.AddBridge("br0"); err != nil {
		t.Fatal(err)
	}
	h := mustHost(t, l, "a")
	if _, err := l.Attach(h, "br0", "eth0", "10.213.9.1/24"); err != nil {
		t.Fatal(err)
	}
	routes, err := h.Routes()
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(routes) != "10.213.9.0/24 dev eth0 proto kernel scope link src 10.213.9.1" {
		t.Errorf("want only the subnet's own route, got:\n%s", routes)
	}
	// The kernel's own answer, without a packet sent: 192.0.2.1 is a
	// documentation address (TEST-NET-1).
	out, err := h.Command("ip", "-4", "route", "get", "192.0.2.1").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "unreachable") {
		t.Errorf("a host of the lab has a way out: %v %s", err, out)
	}
	if forwarding := readIn(t, h, "/proc/sys/net/ipv4/ip_forward"); forwarding != "0" {
		t.Errorf("forwarding is %q in a host, want 0", forwarding)
	}
	if after := rootNetwork(t); after != before {
		t.Errorf("the test's own namespace changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// Close removes every namespace it made.
func TestCloseRemovesTheNamespaces(t *testing.T) {
	if err := Check(); err != nil {
		testkit.NeedsOrSkip(t, "no network namespaces here: %v", err)
	}
	l, err := New("nstest")
	if err != nil {
		t.Fatal(err)
	}
	h := mustHost(t, l, "a")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(namedDir + "/" + h.Name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace %s left behind: %v", h.Name, err)
	}
}

func mustHost(t *testing.T, l *Lab, name string) *Host {
	t.Helper()
	h, err := l.AddHost(name)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func echo(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if _, err := c.Write([]byte(line)); err != nil {
					return
				}
			}
		}()
	}
}

// roundTrip sends line and returns what comes back within wait ("" if
// nothing did).
func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader, line string, wait time.Duration) string {
	t.Helper()
	if _, err := c.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(wait))
	got, _ := r.ReadString('\n')
	return got
}

func readIn(t *testing.T, h *Host, file string) string {
	t.Helper()
	var b []byte
	if err := h.Do(func() (err error) { b, err = os.ReadFile(file); return err }); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// rootNetwork is the test's own namespace's addresses and routes.
func rootNetwork(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", "ip -br addr; ip route show table all").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	return string(out)
}
