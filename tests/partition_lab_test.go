package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netcore-connect/netcore-connect/internal/testing/netns"
	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"
)

// The lab of the partition tests (partition_test.go): NATS JetStream nodes
// and netcore-connect instances, each in a network namespace of its own.

// The partition tests run every server and instance in a network namespace
// of its own (internal/testing/netns), so that a link can really be cut: the node
// keeps running and sees only silence, as in a network partition, not a
// closed connection, as when a process dies.
//
// The test network has two switches. Nodes talk to each other (cluster
// routes, Raft) on the route network and to their clients on the client
// network; netcore-connect instances are hosts on the client network only.
// So a node can be cut off from everything, or from its peers only while it
// keeps its clients, which is the case a killed node never shows.
const (
	routeNet  = "10.213.1." // nodes only: routes between them
	clientNet = "10.213.2." // nodes and their clients

	// Each host is a machine of its own, so every netcore-connect listens
	// on the same addresses inside its host; the test reaches them through
	// forwarders on its own loopback.
	inWebhook = "127.0.0.1:8080"
	inAdmin   = "127.0.0.1:8081"
	inMeiro   = "127.0.0.1:8082" // Meiro Events, as the deliverers see it

	// As config/scale-out names them.
	eventsStream    = "NETCORE_EVENTS"
	deliverConsumer = "meiro-events"
)

// ackWait is how long the stream waits for a deliverer's acknowledgement
// before it delivers the event again: a repeat caused by an acknowledgement
// lost in a cut comes this long after the first copy, and a test can count
// repeats only once that long has passed. The long variant keeps
// deliver.yaml's 60 s; the short one sets 15 s, so that CI stays short.
func ackWait() time.Duration {
	if *long {
		return 60 * time.Second
	}
	return 15 * time.Second
}

// partitionLab is three JetStream nodes in a lab network, and the test's own
// host on the client network from which it watches the cluster.
type partitionLab struct {
	lab      *netns.Lab
	nodes    []*labNode
	observer *netns.Host
	clients  map[string]string // client-network address → host name
}

// labNode is one nats-server in a host of its own.
type labNode struct {
	*natsNode
	name          string
	addr          string      // on the client network
	routes, front *netns.Link // its links to the route and client networks
	js            jetstream.JetStream
}

func newPartitionLab(t *testing.T) *partitionLab {
	t.Helper()
	if err := netns.Check(); err != nil {
		testkit.NeedsOrSkip(t, "the partition tests need network namespaces: %v", err)
	}
	lab, err := netns.New("ncpart")
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so run last: after every process in the lab stopped.
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("removing the test network: %v", err)
		}
	})
	pl := &partitionLab{lab: lab, clients: map[string]string{}}
	for _, bridge := range []string{"routes", "clients"} {
		if err := lab.AddBridge(bridge); err != nil {
			t.Fatal(err)
		}
	}
	pl.observer, _ = pl.addClient(t, "observer")
	for i := range 3 {
		pl.nodes = append(pl.nodes, pl.startNode(t, i+1))
	}
	waitFor(t, "the JetStream cluster", 60*time.Second, func() bool {
		for _, n := range pl.nodes {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err := n.js.AccountInfo(ctx)
			cancel()
			if err != nil {
				return false
			}
		}
		return true
	})
	return pl
}

// startNode runs nats-server n in its host, with routes to all three nodes.
func (pl *partitionLab) startNode(t *testing.T, n int) *labNode {
	t.Helper()
	name := fmt.Sprintf("n%d", n)
	h, err := pl.lab.AddHost(name)
	if err != nil {
		t.Fatal(err)
	}
	node := &labNode{name: name, addr: fmt.Sprintf("%s1%d", clientNet, n)}
	if node.routes, err = pl.lab.Attach(h, "routes", "eth-routes", fmt.Sprintf("%s1%d/24", routeNet, n)); err != nil {
		t.Fatal(err)
	}
	if node.front, err = pl.lab.Attach(h, "clients", "eth-clients", node.addr+"/24"); err != nil {
		t.Fatal(err)
	}
	pl.clients[node.addr] = name
	dir := t.TempDir()
	conf := fmt.Sprintf(`server_name: %s
listen: "%s:4222"
http: "%s:8222"
jetstream { store_dir: %q }
cluster { name: netcore, listen: "%s1%d:6222", routes: [ nats-route://%s11:6222, nats-route://%s12:6222, nats-route://%s13:6222 ] }
`, name, node.addr, node.addr, dir, routeNet, n, routeNet, routeNet, routeNet)
	confFile := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	node.natsNode = &natsNode{cmd: h.Command(natsServer(t), "-c", confFile), url: "nats://" + node.addr + ":4222", exited: make(chan struct{})}
	node.cmd.Stdout, node.cmd.Stderr = &testkit.SyncBuffer{}, &testkit.SyncBuffer{}
	if err := node.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = node.cmd.Wait(); close(node.exited) }()
	t.Cleanup(func() { _ = node.cmd.Process.Kill(); <-node.exited })

	// The test's own connection through this node only, so that it can
	// ask the cluster through a node on the majority's side of a cut.
	nc, err := nats.Connect(node.url, nats.SetCustomDialer(pl.observer), nats.IgnoreDiscoveredServers(),
		nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if node.js, err = jetstream.New(nc); err != nil {
		t.Fatal(err)
	}
	return node
}

// addClient makes a host on the client network.
func (pl *partitionLab) addClient(t *testing.T, name string) (*netns.Host, *netns.Link) {
	t.Helper()
	h, err := pl.lab.AddHost(name)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("%s%d", clientNet, 100+len(pl.clients))
	link, err := pl.lab.Attach(h, "clients", "eth0", addr+"/24")
	if err != nil {
		t.Fatal(err)
	}
	pl.clients[addr] = name
	return h, link
}

// env is what both scale-out configs need: the nodes, and 3 replicas.
func (pl *partitionLab) env() map[string]string {
	var urls []string
	for _, n := range pl.nodes {
		urls = append(urls, n.url)
	}
	return map[string]string{"NATS_URL": strings.Join(urls, ","), "NETCORE_STREAM_REPLICAS": "3"}
}

// startIngest and startDeliverer run the scale-out configs each in a host
// of its own, named name.
func (pl *partitionLab) startIngest(t *testing.T, name string) (*process, *netns.Link) {
	h, link := pl.addClient(t, name)
	// Without the journal: an instance cut off from the cluster must answer
	// 503, where one with a journal answers 200 from its disk.
	return startIn(t, h, pl.env(), "ingest-direct.yaml", nil), link
}

func (pl *partitionLab) startDeliverer(t *testing.T, name string, m *meiro) *process {
	h, _ := pl.addClient(t, name)
	ln, err := h.Listen("tcp", inMeiro)
	if err != nil {
		t.Fatal(err)
	}
	forward(t, ln, func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "tcp", m.Listener.Addr().String())
	})
	env := pl.env()
	env["MEIRO_EVENTS_URL"] = "http://" + inMeiro + "/collect"
	return startIn(t, h, env, "deliver.yaml", []string{"input.nats_jetstream.ack_wait=" + ackWait().String()})
}

// startIn runs netcore-connect with config/scale-out/config inside h, and
// waits until it is ready. Its webhook and admin server are reached through
// forwarders on the test's loopback, so that the harness's helpers work on
// it unchanged and Netcore's side is never cut off with it.
func startIn(t *testing.T, h *netns.Host, env map[string]string, config string, set []string) *process {
	t.Helper()
	dir := t.TempDir()
	p := &process{stdout: &testkit.SyncBuffer{}, stderr: &testkit.SyncBuffer{}, dataDir: filepath.Join(dir, "data"), exited: make(chan struct{})}
	p.webhook = "http://" + forwardInto(t, h, inWebhook) + "/netcore"
	p.admin = "http://" + forwardInto(t, h, inAdmin)
	args := []string{"run"}
	for _, kv := range set {
		args = append(args, "--set", kv)
	}
	p.cmd = h.Command(binary, append(args, filepath.Join(repoRoot(t), "config", "scale-out", config))...)
	p.cmd.Dir = dir
	p.launch(t, inWebhook, inAdmin, env, func() string {
		return fmt.Sprintf("%s in %s, output:\n%s%s", config, h.Name, p.stdout.String(), p.stderr.String())
	})
	waitFor(t, config+" ready in "+h.Name, 30*time.Second, func() bool {
		select {
		case <-p.exited:
			t.Fatalf("netcore-connect exited at start:\n%s", p.stderr.String())
		default:
		}
		resp, err := http.Get(p.admin + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return p
}

// forwardInto listens on the test's loopback and forwards to addr inside h.
func forwardInto(t *testing.T, h *netns.Host, addr string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	forward(t, ln, func(ctx context.Context) (net.Conn, error) { return h.DialContext(ctx, "tcp", addr) })
	return ln.Addr().String()
}

// forward joins each connection accepted on ln to one that dial opens.
func forward(t *testing.T, ln net.Listener, dial func(context.Context) (net.Conn, error)) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				u, err := dial(ctx)
				cancel()
				if err != nil {
					return
				}
				defer u.Close()
				done := make(chan struct{}, 2)
				go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
				go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
				<-done
			}()
		}
	}()
}

// ask runs fn through the first node other than skip that answers within
// 2 s: the majority's view of the cluster while skip is cut off.
func (pl *partitionLab) ask(skip *labNode, fn func(context.Context, jetstream.JetStream) error) error {
	var err error
	for _, n := range pl.nodes {
		if n == skip {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = fn(ctx, n.js)
		cancel()
		if err == nil {
			return nil
		}
	}
	return err
}

// leader is the stream's leader as JetStream's API reports it
// (StreamInfo Cluster.Leader), asked through a node other than skip.
func (pl *partitionLab) leader(skip *labNode) *labNode {
	var name string
	_ = pl.ask(skip, func(ctx context.Context, js jetstream.JetStream) error {
		s, err := js.Stream(ctx, eventsStream)
		if err != nil {
			return err
		}
		if c := s.CachedInfo().Cluster; c != nil {
			name = c.Leader
		}
		return nil
	})
	for _, n := range pl.nodes {
		if n.name == name {
			return n
		}
	}
	return nil
}

// inSync says whether the stream and the deliverers' consumer each have a
// leader and every replica current.
func (pl *partitionLab) inSync() bool {
	return pl.ask(nil, func(ctx context.Context, js jetstream.JetStream) error {
		s, err := js.Stream(ctx, eventsStream)
		if err != nil {
			return err
		}
		c, err := js.Consumer(ctx, eventsStream, deliverConsumer)
		if err != nil {
			return err
		}
		for _, ci := range []*jetstream.ClusterInfo{s.CachedInfo().Cluster, c.CachedInfo().Cluster} {
			if ci == nil || ci.Leader == "" || len(ci.Replicas) != 2 {
				return fmt.Errorf("no leader or replicas missing")
			}
			for _, r := range ci.Replicas {
				if !r.Current || r.Offline {
					return fmt.Errorf("replica %s not current", r.Name)
				}
			}
		}
		return nil
	}) == nil
}

// drained says whether every stored event was delivered and acknowledged:
// nothing waits and nothing is out for delivery, so no repeat is still to
// come.
func (pl *partitionLab) drained() bool {
	return pl.ask(nil, func(ctx context.Context, js jetstream.JetStream) error {
		c, err := js.Consumer(ctx, eventsStream, deliverConsumer)
		if err != nil {
			return err
		}
		if i := c.CachedInfo(); i.NumPending != 0 || i.NumAckPending != 0 {
			return fmt.Errorf("%d waiting, %d out", i.NumPending, i.NumAckPending)
		}
		return nil
	}) == nil
}

// clientsOf names the hosts connected to n, from its monitoring endpoint.
func (pl *partitionLab) clientsOf(t *testing.T, n *labNode) []string {
	client := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: pl.observer.DialContext}}
	resp, err := client.Get("http://" + n.addr + ":8222/connz")
	if err != nil {
		t.Logf("asking %s for its clients: %v", n.name, err)
		return nil
	}
	defer resp.Body.Close()
	var connz struct {
		Connections []struct {
			IP string `json:"ip"`
		} `json:"connections"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&connz); err != nil {
		t.Logf("decoding %s's clients: %v", n.name, err)
	}
	var names []string
	for _, c := range connz.Connections {
		if name := pl.clients[c.IP]; name != "observer" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}
