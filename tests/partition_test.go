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
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netcore-connect/netcore-connect/internal/testing/netns"
	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"
)

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
	return startIn(t, h, pl.env(), "ingest.yaml", nil), link
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
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	p.cmd.Env = append(os.Environ(), "NETCORE_ADDRESS="+inWebhook, "NETCORE_ADMIN_ADDRESS="+inAdmin, "NETCORE_DATA_DIR="+p.dataDir)
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("%s in %s, output:\n%s%s", config, h.Name, p.stdout.String(), p.stderr.String())
		}
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

// postResult is one post of the load and its answer (0: no answer).
type postResult struct {
	ingest     string
	start, end time.Time
	status     int
	markers    []string
}

// postLog is a load on several ingest instances that keeps every answer
// with its time, to be read against the cuts.
type postLog struct {
	mu    sync.Mutex
	posts []postResult
	wg    sync.WaitGroup
	stop  chan struct{}
}

func newPostLog() *postLog { return &postLog{stop: make(chan struct{})} }

// drive posts marked posts of 5 events to target from senders goroutines
// until finish.
func (l *postLog) drive(target, ingest string, senders int) {
	for s := range senders {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				body, markers := markedBody(fmt.Sprintf("%s-%d-%d", ingest, s, i), 5)
				r := postResult{ingest: ingest, start: time.Now(), markers: markers}
				r.status, _ = postJSON(target, body)
				r.end = time.Now()
				l.mu.Lock()
				l.posts = append(l.posts, r)
				l.mu.Unlock()
				if r.status != http.StatusOK {
					time.Sleep(20 * time.Millisecond) // refused or gone: no busy loop
				}
			}
		}()
	}
}

func (l *postLog) finish() {
	close(l.stop)
	l.wg.Wait()
}

// within lists the posts to ingest ("" for all) sent after from and answered
// before to.
func (l *postLog) within(ingest string, from, to time.Time) []postResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []postResult
	for _, r := range l.posts {
		if (ingest == "" || r.ingest == ingest) && !r.start.Before(from) && !r.end.After(to) {
			out = append(out, r)
		}
	}
	return out
}

// acked lists the markers of every event of a post answered 200.
func (l *postLog) acked() []string {
	var out []string
	for _, r := range l.within("", time.Time{}, time.Now()) {
		if r.status == http.StatusOK {
			out = append(out, r.markers...)
		}
	}
	return out
}

// firstOK is when ingest ("" for any) first answered 200 a post sent after from.
func (l *postLog) firstOK(ingest string, from time.Time) (time.Time, bool) {
	var first time.Time
	for _, r := range l.within(ingest, from, time.Now()) {
		if r.status == http.StatusOK && (first.IsZero() || r.end.Before(first)) {
			first = r.end
		}
	}
	return first, !first.IsZero()
}

// statuses counts answers by status ("none" for no answer).
func statuses(posts []postResult) map[string]int {
	out := map[string]int{}
	for _, r := range posts {
		key := "none"
		if r.status != 0 {
			key = fmt.Sprint(r.status)
		}
		out[key]++
	}
	return out
}

// arrivals keeps when Meiro Events accepted each marked event.
type arrivals struct {
	mu sync.Mutex
	at map[string][]time.Time
}

func recordArrivals(m *meiro) *arrivals {
	a := &arrivals{at: map[string][]time.Time{}}
	m.setRespond(func(body []byte) int {
		var ev struct {
			Marker string `json:"marker"`
		}
		_ = json.Unmarshal(body, &ev)
		a.mu.Lock()
		a.at[ev.Marker] = append(a.at[ev.Marker], time.Now())
		a.mu.Unlock()
		return http.StatusOK
	})
	return a
}

// repeats lists the markers that arrived more than once, with their times.
func (a *arrivals) repeats() map[string][]time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := map[string][]time.Time{}
	for mk, times := range a.at {
		if len(times) > 1 {
			out[mk] = times
		}
	}
	return out
}

// cut says what a partition cuts a node off from.
type cut string

const (
	cutAll   cut = "everything" // its peers and its clients
	cutPeers cut = "its peers"  // routes only: it keeps its clients
)

// window is one partition, as it happened.
type window struct {
	cutAt, healedAt time.Time
	wasLeader       bool
	failover        time.Duration // cut to a new stream leader
	recovered       time.Duration // heal to every replica current
}

// partition cuts n off for hold under load, heals it, and checks that no
// ingest instance that stayed connected to n alone answered 200 a post it
// took once n was cut off: n cannot have had a majority behind any event.
func (pl *partitionLab) partition(t *testing.T, n *labNode, from cut, hold time.Duration, l *postLog, ingest map[string]*process) window {
	t.Helper()
	var w window
	w.wasLeader = pl.leader(nil) == n
	connected := pl.clientsOf(t, n)
	logAt := map[string]int{}
	for name, p := range ingest {
		logAt[name] = len(p.stdout.String())
	}
	links := []*netns.Link{n.routes}
	if from == cutAll {
		links = append(links, n.front)
	}
	for _, k := range links {
		if err := k.Cut(); err != nil {
			t.Fatal(err)
		}
	}
	// From here on, not before: a post sent while the links were going
	// down may rightly have been stored.
	w.cutAt = time.Now()
	for time.Since(w.cutAt) < hold {
		if w.wasLeader && w.failover == 0 {
			if nl := pl.leader(n); nl != nil && nl != n {
				w.failover = time.Since(w.cutAt)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	w.healedAt = time.Now()
	for _, k := range links {
		if err := k.Heal(); err != nil {
			t.Fatal(err)
		}
	}
	if w.wasLeader && w.failover == 0 {
		t.Errorf("no new stream leader within %s of cutting off the leader %s", hold, n.name)
	}
	waitFor(t, "every replica current after the heal", 90*time.Second, func() bool { return pl.inSync() })
	w.recovered = time.Since(w.healedAt)
	t.Logf("cut %s (stream leader: %v) off from %s for %s; its clients: %v; new stream leader after %s; every replica current %s after the heal; answers during the cut: %v",
		n.name, w.wasLeader, from, hold, connected, w.failover.Round(time.Millisecond), w.recovered.Round(time.Millisecond), statuses(l.within("", w.cutAt, w.healedAt)))

	for name, p := range ingest {
		during := statuses(l.within(name, w.cutAt, w.healedAt))
		outage := "none"
		if first, ok := l.firstOK(name, w.cutAt); ok {
			outage = first.Sub(w.cutAt).Round(time.Millisecond).String()
		}
		stuck := slices.Contains(connected, name) && !strings.Contains(p.stdout.String()[logAt[name]:], "reconnected")
		t.Logf("  %s: connected to %s throughout: %v; answers during the cut %v; first 200 %s after the cut", name, n.name, stuck, during, outage)
		if stuck && during["200"] > 0 {
			t.Errorf("%s answered 200 to %d posts while its only node %s was cut off from %s", name, during["200"], n.name, from)
		}
	}
	return w
}

// nextTarget is the node to cut off next: the stream's leader, found
// through JetStream's API; when cutting a node off from its peers only,
// preferably one an ingest instance is connected to, so that a node that
// keeps its clients is seen answering them; never last again.
func (pl *partitionLab) nextTarget(t *testing.T, from cut, last *labNode) *labNode {
	candidates := []*labNode{pl.leader(nil)}
	if from == cutPeers {
		candidates = nil
		for _, n := range append([]*labNode{pl.leader(nil)}, pl.nodes...) {
			if n != nil && slices.ContainsFunc(pl.clientsOf(t, n), func(c string) bool { return strings.HasPrefix(c, "ingest") }) {
				candidates = append(candidates, n)
			}
		}
	}
	candidates = append(candidates, pl.nodes...)
	for _, n := range candidates {
		if n != nil && n != last {
			return n
		}
	}
	return nil
}

// Two ingest and two deliver instances on three JetStream nodes (3
// replicas), each in its own network namespace, under load. The stream's
// leader is cut off from everything for 20 s, healed; then another node (one
// an ingest instance is connected to, else the new leader) is cut off from
// its peers only, so that it keeps its clients, for 20 s, healed. Every
// event answered 200 is delivered; repeats are counted and must come from a
// cut (at least once delivery); an ingest instance left connected only to
// the cut-off node answers no 200. A 200 for an event that only a minority
// stored would be lost when the minority rejoins and drops its unreplicated
// entries, so "every acknowledged event delivered" checks that too.
//
//	go test ./tests -run 'Partitioned|CutOff' -v                       (CI: two cuts of 20 s)
//	go test ./tests -run 'Partitioned|CutOff' -v -long -timeout 30m   (six cuts of 30 s)
func TestScaleOutSurvivesANodePartitioned(t *testing.T) {
	pl := newPartitionLab(t)
	m := newMeiro(t)
	arrived := recordArrivals(m)
	ingest := map[string]*process{}
	for _, name := range []string{"ingest1", "ingest2"} {
		ingest[name], _ = pl.startIngest(t, name)
	}
	var deliverers []*process
	for _, name := range []string{"deliver1", "deliver2"} {
		deliverers = append(deliverers, pl.startDeliverer(t, name, m))
	}

	l := newPostLog()
	for name, p := range ingest {
		l.drive(p.webhook, name, 4)
	}
	waitFor(t, "events acknowledged by both ingest instances", 30*time.Second, func() bool {
		_, ok1 := l.firstOK("ingest1", time.Time{})
		_, ok2 := l.firstOK("ingest2", time.Time{})
		return ok1 && ok2
	})
	cuts, hold := []cut{cutAll, cutPeers}, 20*time.Second
	if *long {
		cuts, hold = []cut{cutAll, cutPeers, cutAll, cutPeers, cutAll, cutPeers}, 30*time.Second
	}
	var windows []window
	var last *labNode
	for _, from := range cuts {
		target := pl.nextTarget(t, from, last)
		windows = append(windows, pl.partition(t, target, from, hold, l, ingest))
		last = target
	}
	time.Sleep(2 * time.Second) // load on the healed cluster
	stopped := time.Now()
	l.finish()

	acked := l.acked()
	ackedDuringCuts := 0
	for _, w := range windows {
		ackedDuringCuts += statuses(l.within("", w.cutAt, w.healedAt))["200"]
	}
	if len(acked) == 0 || ackedDuringCuts == 0 {
		t.Fatalf("premise: %d events acknowledged, %d posts during the cuts: the load did not run through them", len(acked), ackedDuringCuts)
	}
	waitDelivered(t, m, acked, 3*time.Minute)
	delivered := time.Since(stopped)
	// Only once nothing is out for delivery is no repeat still to come.
	waitFor(t, "the consumer drained (nothing pending, nothing unacknowledged)", ackWait()+time.Minute, func() bool { return pl.drained() })
	reportRepeats(t, arrived, windows, acked, statuses(l.within("", time.Time{}, stopped)), delivered, deliverers)
}

// reportRepeats counts what arrived against what was acknowledged, and
// checks that every repeat is explained by the cuts: its first copy came
// after the first cut began and before ack_wait had passed since the
// cluster was whole again, the time in which a deliverer's acknowledgement
// to the stream can be lost (the stream then delivers the event again, at
// least once being the promise). The deliverers' failed acknowledgements
// are counted beside them: each is logged, and a repeat follows one.
func reportRepeats(t *testing.T, arrived *arrivals, windows []window, acked []string, answers map[string]int, delivered time.Duration, deliverers []*process) {
	t.Helper()
	ackedSet := map[string]bool{}
	for _, mk := range acked {
		ackedSet[mk] = true
	}
	arrived.mu.Lock()
	distinct, unacked := len(arrived.at), 0
	for mk := range arrived.at {
		if !ackedSet[mk] {
			unacked++
		}
	}
	arrived.mu.Unlock()
	failedAcks := 0
	for _, p := range deliverers {
		failedAcks += strings.Count(p.stdout.String(), "Failed to acknowledge message")
	}
	first, last := windows[0], windows[len(windows)-1]
	from, to := first.cutAt.Add(-time.Second), last.healedAt.Add(last.recovered+ackWait())
	repeats := arrived.repeats()
	extra, perCut := 0, make([]int, len(windows))
	var gaps []time.Duration
	for mk, times := range repeats {
		extra += len(times) - 1
		gaps = append(gaps, times[1].Sub(times[0]))
		if times[0].Before(from) || times[0].After(to) {
			t.Errorf("%s arrived %d times, the first at %s: a repeat outside the cuts and the ack_wait (%s) after them",
				mk, len(times), times[0].Format(time.StampMilli), ackWait())
			continue
		}
		// The cut it came in or after: the last one begun before it.
		next := slices.IndexFunc(windows, func(w window) bool { return times[0].Before(w.cutAt.Add(-time.Second)) })
		if next < 0 {
			next = len(windows)
		}
		perCut[next-1]++
	}
	slices.Sort(gaps)
	gapRange := "-"
	if len(gaps) > 0 {
		gapRange = fmt.Sprintf("%s to %s", gaps[0].Round(time.Millisecond), gaps[len(gaps)-1].Round(time.Millisecond))
	}
	t.Logf("posts answered: %v; events acknowledged: %d; distinct events delivered: %d (answered 503 but stored and delivered: %d); repeats: %d events, %d extra copies, first copies by cut %v, second copies %s later; acknowledgements the deliverers logged as failed: %d; every acknowledged event delivered %s after the load stopped",
		answers, len(acked), distinct, unacked, len(repeats), extra, perCut, gapRange, failedAcks, delivered.Round(time.Millisecond))
}

// An ingest instance cut off from the whole cluster, while Netcore can
// still reach it, answers 503 to every post it takes, never 200; healed, it
// answers 200 again without a restart, and every event answered 200 is
// delivered.
func TestIngestCutOffFromTheClusterAnswers503(t *testing.T) {
	pl := newPartitionLab(t)
	m := newMeiro(t)
	arrived := recordArrivals(m)
	p, link := pl.startIngest(t, "ingest")
	deliverer := pl.startDeliverer(t, "deliver", m)

	l := newPostLog()
	l.drive(p.webhook, "ingest", 16)
	waitFor(t, "events acknowledged before the cut", 30*time.Second, func() bool { _, ok := l.firstOK("", time.Time{}); return ok })
	// Each post to a cut-off instance waits out ack_timeout (10 s) for its
	// 503: 25 s lets every sender take a whole post inside the cut.
	hold := 25 * time.Second
	if *long {
		hold = 2 * time.Minute
	}
	if err := link.Cut(); err != nil {
		t.Fatal(err)
	}
	cutAt := time.Now()
	time.Sleep(hold)
	healedAt := time.Now()
	if err := link.Heal(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a 200 after the heal", 60*time.Second, func() bool { _, ok := l.firstOK("", healedAt); return ok })
	first, _ := l.firstOK("", healedAt)
	time.Sleep(2 * time.Second)
	stopped := time.Now()
	l.finish()

	during := l.within("", cutAt, healedAt)
	answers := statuses(during)
	if len(during) == 0 {
		t.Fatal("premise: no post was sent and answered while the ingest instance was cut off")
	}
	if answers["200"] > 0 || answers["503"] != len(during) {
		t.Errorf("posts to an ingest instance cut off from the cluster: %v, want every one 503", answers)
	}
	acked := l.acked()
	waitDelivered(t, m, acked, 2*time.Minute)
	waitFor(t, "the consumer drained", ackWait()+time.Minute, func() bool { return pl.drained() })
	w := window{cutAt: cutAt, healedAt: healedAt}
	t.Logf("ingest cut off for %s: answers during the cut %v; first 200 %s after the heal", hold, answers, first.Sub(healedAt).Round(time.Millisecond))
	reportRepeats(t, arrived, []window{w}, acked, statuses(l.within("", time.Time{}, stopped)), time.Since(stopped), []*process{deliverer})
}
