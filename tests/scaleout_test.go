package tests

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	natsServerOnce sync.Once
	natsServerBin  string
	natsServerErr  error
)

// natsServer builds nats-server from the module the project depends on, once,
// so that a node can be killed with -9 like any process.
func natsServer(t testing.TB) string {
	t.Helper()
	natsServerOnce.Do(func() {
		natsServerBin = filepath.Join(filepath.Dir(binary), "nats-server")
		cmd := exec.Command("go", "build", "-o", natsServerBin, "github.com/nats-io/nats-server/v2")
		var out []byte
		out, natsServerErr = cmd.CombinedOutput()
		if natsServerErr != nil {
			natsServerErr = fmt.Errorf("building nats-server: %w\n%s", natsServerErr, out)
		}
	})
	if natsServerErr != nil {
		t.Fatal(natsServerErr)
	}
	return natsServerBin
}

// natsNode is one server of a cluster, run as its own process.
type natsNode struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{}
}

// startCluster runs a 3-node JetStream cluster on loopback.
func startCluster(t testing.TB) []*natsNode {
	t.Helper()
	bin := natsServer(t)
	clientAddrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	routeAddrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	var routes []string
	for _, a := range routeAddrs {
		routes = append(routes, "nats-route://"+a)
	}
	nodes := make([]*natsNode, 3)
	for i := range nodes {
		dir := t.TempDir()
		conf := fmt.Sprintf(`server_name: n%d
listen: %s
jetstream { store_dir: %q }
cluster { name: netcore, listen: %s, routes: [ %s ] }
`, i+1, clientAddrs[i], dir, routeAddrs[i], strings.Join(routes, ", "))
		confFile := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		n := &natsNode{cmd: exec.Command(bin, "-c", confFile), url: "nats://" + clientAddrs[i], exited: make(chan struct{})}
		n.cmd.Stdout, n.cmd.Stderr = &testkit.SyncBuffer{}, &testkit.SyncBuffer{}
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = n.cmd.Wait(); close(n.exited) }()
		t.Cleanup(func() { _ = n.cmd.Process.Kill(); <-n.exited })
		nodes[i] = n
	}
	// Ready when JetStream answers through every node (a meta leader exists).
	waitFor(t, "the JetStream cluster", 60*time.Second, func() bool {
		for _, n := range nodes {
			nc, err := nats.Connect(n.url, nats.Timeout(time.Second))
			if err != nil {
				return false
			}
			js, _ := jetstream.New(nc)
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err = js.AccountInfo(ctx)
			cancel()
			nc.Close()
			if err != nil {
				return false
			}
		}
		return true
	})
	return nodes
}

func clusterURLs(nodes []*natsNode) string {
	var urls []string
	for _, n := range nodes {
		urls = append(urls, n.url)
	}
	return strings.Join(urls, ",")
}

// scaleOutEnv is what both scale-out configs take: the cluster's URLs
// (comma-separated), 3 replicas, and Meiro Events.
func scaleOutEnv(urls string, m *meiro) map[string]string {
	return map[string]string{"NATS_URL": urls, "NETCORE_STREAM_REPLICAS": "3", "MEIRO_EVENTS_URL": m.URL + "/collect"}
}

// Two ingest and two deliver instances on a 3-node cluster with 3 replicas;
// one node killed with -9 under load; every acknowledged event arrives.
func TestScaleOutSurvivesANodeKilled(t *testing.T) {
	nodes := startCluster(t)
	m := newMeiro(t)
	root := repoRoot(t)
	env := scaleOutEnv(clusterURLs(nodes), m)
	var ingest []*process
	for range 2 {
		ingest = append(ingest, startProcess(t, options{env: env, config: filepath.Join(root, "config", "scale-out", "ingest.yaml")}))
	}
	for range 2 {
		startProcess(t, options{env: env, config: filepath.Join(root, "config", "scale-out", "deliver.yaml")})
	}

	stop := make(chan struct{})
	var results []func() []string
	for i, p := range ingest {
		results = append(results, load(p.webhook, fmt.Sprintf("nats%d", i), 4, stop))
	}
	time.Sleep(2 * time.Second)
	_ = nodes[0].cmd.Process.Kill() // kill -9
	<-nodes[0].exited
	time.Sleep(3 * time.Second)
	close(stop)
	var acked []string
	for _, r := range results {
		acked = append(acked, r()...)
	}
	if len(acked) == 0 {
		t.Fatal("nothing was acknowledged")
	}
	waitDelivered(t, m, acked, 120*time.Second)
	t.Logf("%d events acknowledged by 2 ingest instances, a node killed with -9, all delivered by 2 deliverers", len(acked))
}

// An event Meiro Events keeps failing is delivered at most
// NETCORE_MAX_DELIVER times, then kept as a dead letter.
func TestScaleOutDeadLettersAfterMaxDeliveries(t *testing.T) {
	nodes := startCluster(t)
	m := newMeiro(t)
	m.setRespond(func([]byte) int { return http.StatusServiceUnavailable })
	env := map[string]string{"NATS_URL": clusterURLs(nodes), "MEIRO_EVENTS_URL": m.URL + "/collect", "NETCORE_MAX_DELIVER": "2"}
	ingest := startProcess(t, options{env: env, config: filepath.Join(repoRoot(t), "config", "scale-out", "ingest.yaml")})
	deliver := startProcess(t, options{env: env, config: filepath.Join(repoRoot(t), "config", "scale-out", "deliver.yaml")})
	body, _ := markedBody("max-deliver", 1)
	if status, err := postJSON(ingest.webhook, body); err != nil || status != http.StatusOK {
		t.Fatalf("post: %d %v", status, err)
	}
	deadDir := filepath.Join(deliver.dataDir, "dead-letter")
	waitFor(t, "a dead letter after 2 deliveries", 30*time.Second, func() bool { return countLines(t, deadDir) == 1 })
	if lines := readLines(t, deadDir); !strings.Contains(lines, "max-deliver-0") || !strings.Contains(lines, "(503)") {
		t.Errorf("want the event and its last error (503) in the dead letter: %s", lines)
	}
}
