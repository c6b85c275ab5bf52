package netns

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
)

// maxHostName keeps every interface name the lab makes within Linux's 15
// characters (a host name plus a link number).
const maxHostName = 12

// Lab is a network of namespaces made for one test run. Its names carry a
// random run id, so that runs side by side, or leftovers of a run that
// died, never collide.
type Lab struct {
	prefix string
	hub    *Host

	mu    sync.Mutex
	hosts []*Host // every namespace made, the hub first
	links map[string]int
}

// Host is one namespace of a lab: a machine of the test network.
type Host struct {
	Name string // the namespace's name, as `ip netns` knows it
}

// Link is the hub's end of a veth pair joining a host to a bridge.
type Link struct {
	hub *Host
	dev string
}

// Check says why a lab cannot be made here, or nil when it can.
func Check() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root (run the test as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("the ip command (iproute2) is not installed: %w", err)
	}
	probe := "netcore-probe-" + randomID()
	if err := ip("netns", "add", probe); err != nil {
		return fmt.Errorf("cannot make a network namespace here: %w", err)
	}
	defer func() { _ = ip("netns", "del", probe) }()
	// What a lab is made of: a bridge, and a veth pair.
	if err := ip("-n", probe, "link", "add", "probe-br", "type", "bridge"); err != nil {
		return fmt.Errorf("cannot make a bridge here: %w", err)
	}
	if err := ip("-n", probe, "link", "add", "probe-a", "type", "veth", "peer", "name", "probe-b"); err != nil {
		return fmt.Errorf("cannot make a veth pair here: %w", err)
	}
	return nil
}

// New makes a lab whose namespaces are named after prefix, with an empty
// hub. Close it when done, also when the test failed.
func New(prefix string) (*Lab, error) {
	l := &Lab{prefix: prefix + "-" + randomID(), links: map[string]int{}}
	hub, err := l.addNamespace("hub")
	if err != nil {
		return nil, err
	}
	l.hub = hub
	return l, nil
}

// AddBridge makes a switch in the hub. It carries no address: the hub
// takes no part in the network but as its wiring.
func (l *Lab) AddBridge(name string) error {
	if err := ip("-n", l.hub.Name, "link", "add", name, "type", "bridge"); err != nil {
		return err
	}
	return ip("-n", l.hub.Name, "link", "set", name, "up")
}

// AddHost makes a namespace with its loopback up and forwarding off.
func (l *Lab) AddHost(name string) (*Host, error) {
	if len(name) > maxHostName {
		return nil, fmt.Errorf("host name %q longer than %d characters", name, maxHostName)
	}
	return l.addNamespace(name)
}

func (l *Lab) addNamespace(name string) (*Host, error) {
	h := &Host{Name: l.prefix + "-" + name}
	if err := ip("netns", "add", h.Name); err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.hosts = append(l.hosts, h)
	l.mu.Unlock()
	if err := ip("-n", h.Name, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	// Off already in a new namespace on most kernels; made sure of, since
	// a host joined to two bridges must never route between them.
	if err := h.writeSysctl("ipv4/ip_forward", "0"); err != nil {
		return nil, err
	}
	return h, h.writeSysctl("ipv6/conf/all/disable_ipv6", "1")
}

// Attach joins h to bridge by a veth pair: the host's end is named ifname
// and given cidr (e.g. 10.213.1.11/24), which also gives the host its only
// route, to that subnet. The returned link cuts and heals the pair.
func (l *Lab) Attach(h *Host, bridge, ifname, cidr string) (*Link, error) {
	l.mu.Lock()
	short := strings.TrimPrefix(h.Name, l.prefix+"-")
	l.links[short]++
	dev := fmt.Sprintf("%s-%d", short, l.links[short])
	l.mu.Unlock()
	steps := [][]string{
		{"-n", l.hub.Name, "link", "add", dev, "type", "veth", "peer", "name", ifname, "netns", h.Name},
		{"-n", l.hub.Name, "link", "set", dev, "master", bridge},
		{"-n", l.hub.Name, "link", "set", dev, "up"},
		{"-n", h.Name, "addr", "add", cidr, "dev", ifname},
		{"-n", h.Name, "link", "set", ifname, "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return nil, err
		}
	}
	return &Link{hub: l.hub, dev: dev}, nil
}

// Cut drops everything on the link from now on, both ways, without a word
// to either side: what a partition looks like to the host and its peers.
func (k *Link) Cut() error { return ip("-n", k.hub.Name, "link", "set", k.dev, "down") }

// Heal puts the link back.
func (k *Link) Heal() error { return ip("-n", k.hub.Name, "link", "set", k.dev, "up") }

// Command runs a program inside the host (`ip netns exec`): the process
// sees only the host's devices and addresses.
func (h *Host) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.Name, name}, args...)...)
}

// Routes lists the host's IPv4 routes (the main table, as `ip route`
// shows it).
func (h *Host) Routes() (string, error) {
	out, err := exec.Command("ip", "-n", h.Name, "-4", "route", "show").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ip -n %s route: %w: %s", h.Name, err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// Close removes every namespace of the lab; the veth pairs go with them.
// Stop the processes running in its hosts first.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for i := len(l.hosts) - 1; i >= 0; i-- {
		errs = append(errs, ip("netns", "del", l.hosts[i].Name))
	}
	l.hosts = nil
	return errors.Join(errs...)
}

func ip(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

func randomID() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
