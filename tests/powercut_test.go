package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	bolt "go.etcd.io/bbolt"

	"github.com/netcore-connect/netcore-connect/internal/testing/powercut"
	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"
)

// refusedLoad posts, until stop, single events that Meiro Events refuses
// for good (they become dead letters) and bodies that are not JSON (they
// are answered 400 and kept in the rejected-posts file). It returns the
// markers of the refused events answered 200.
func refusedLoad(target, prefix string, stop <-chan struct{}) func() []string {
	var acked []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			marker := fmt.Sprintf("%s-refuse-%d", prefix, i)
			body := []byte(fmt.Sprintf(`{"p":[{"marker":%q,"refuse":true}]}`, marker))
			if status, err := postJSON(target, body); err == nil && status == http.StatusOK {
				acked = append(acked, marker)
			}
			_, _ = postJSON(target, []byte(fmt.Sprintf(`{"p":[{"marker":%q`, marker+"-torn")))
		}
	}()
	return func() []string { <-done; return acked }
}

// partlyFailingMeiro refuses for good every event marked "refuse" and
// answers 503 to two requests in three, so that acknowledged events wait
// in the queue when the power goes.
func partlyFailingMeiro(t *testing.T) *meiro {
	m := newMeiro(t)
	var n atomic.Int64
	m.setRespond(func(body []byte) int {
		if bytes.Contains(body, []byte(`"refuse"`)) {
			return http.StatusBadRequest
		}
		if n.Add(1)%3 != 0 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	return m
}

// The default pipeline with NETCORE_DATA_DIR on the power-cut file system,
// under load, power cut at random moments (3 times, 12 with -long; every
// other cut torn), restarted each time: every event answered 200 arrives,
// every refused one answered 200 ends as a dead letter, and after each cut
// the queue file opens clean and no dead-letter or rejected-posts file is
// torn.
func TestPowerCutsUnderLoadLoseNothingAcknowledged(t *testing.T) {
	cuts := 3
	if *long {
		cuts = 12
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed))
	t.Logf("cut moments from seed %d", seed)
	m := partlyFailingMeiro(t)
	disk := powercut.MountForTest(t)
	var acked, refused []string
	waiting := 0
	for c := range cuts {
		p := startProcess(t, options{env: m.env(), dir: disk.Dir, cwd: t.TempDir()})
		stop := make(chan struct{})
		events := load(p.webhook, fmt.Sprintf("cut%d", c), 8, stop)
		refusals := refusedLoad(p.webhook, fmt.Sprintf("cut%d", c), stop)
		time.Sleep(time.Duration(300+rng.IntN(1700)) * time.Millisecond)
		delivered := markersAt(t, m)
		// Every other cut is torn: half the sectors overwritten since
		// their file's last fsync reach the disk anyway.
		var kept func() bool
		if c%2 == 1 {
			kept = func() bool { return rng.IntN(2) == 0 }
		}
		disk.Cut(t, kept, p.kill)
		close(stop)
		got := events()
		if len(got) == 0 {
			t.Fatalf("cut %d: no post was acknowledged before the power cut", c)
		}
		acked, refused = append(acked, got...), append(refused, refusals()...)
		inQueue := 0
		for _, mk := range got {
			if delivered[mk] == 0 {
				inQueue++
			}
		}
		waiting += inQueue
		deadLetters, rejected := checkDataAfterCut(t, filepath.Join(disk.Dir, "data"))
		t.Logf("cut %d (torn: %t): %d events acknowledged, %d of them not yet delivered when the power went; after it %d dead-letter and %d rejected-posts files, all whole",
			c, kept != nil, len(got), inQueue, deadLetters, rejected)
	}
	if waiting == 0 {
		t.Fatal("no acknowledged event was waiting in the queue at any cut: the cuts tested nothing")
	}
	if len(refused) == 0 {
		t.Fatal("no refused event was acknowledged: the dead letters were not tested")
	}

	m.setRespond(func(body []byte) int {
		if bytes.Contains(body, []byte(`"refuse"`)) {
			return http.StatusBadRequest
		}
		return http.StatusOK
	})
	p := startProcess(t, options{env: m.env(), dir: disk.Dir, cwd: t.TempDir()})
	waitDelivered(t, m, acked, 120*time.Second)
	deadDir := filepath.Join(p.dataDir, "dead-letter")
	waitFor(t, fmt.Sprintf("%d acknowledged refused events as dead letters", len(refused)), 60*time.Second, func() bool {
		lines := readLines(t, deadDir)
		for _, mk := range refused {
			if !strings.Contains(lines, fmt.Sprintf("%q", mk)) {
				return false
			}
		}
		return true
	})
	duplicates := 0
	for _, n := range markersAt(t, m) {
		duplicates += max(0, n-1)
	}
	t.Logf("%d power cuts under load: %d acknowledged events (%d waiting in the queue at a cut) all delivered (%d deliveries beyond the first: at least once), %d refused ones all dead letters",
		cuts, len(acked), waiting, duplicates, len(refused))
}

// checkDataAfterCut checks what a power cut left: the queue file opens and
// its structure checks clean; every dead-letter and rejected-posts file is
// whole (complete JSON lines) or absent. It returns how many of each it
// found.
func checkDataAfterCut(t *testing.T, data string) (deadLetters, rejected int) {
	t.Helper()
	checkQueueFile(t, filepath.Join(data, "queue", "events.db"))
	var found []int
	for _, pattern := range []string{"dead-letter/*", "rejected/*"} {
		files, _ := filepath.Glob(filepath.Join(data, pattern))
		for _, f := range files {
			checkWholeLines(t, f)
		}
		found = append(found, len(files))
	}
	return found[0], found[1]
}

// checkQueueFile opens a copy of the queue file with bbolt and checks every
// page. A copy, read with read(2): this process serves the mount, and must
// not fault in pages of a file on it through a memory map.
func checkQueueFile(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		t.Logf("no queue file after the cut (never made durable)")
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "events.db")
	if err := os.WriteFile(cp, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(cp, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("the queue file does not open after a power cut: %v", err)
	}
	defer db.Close()
	if err := db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("the queue file is damaged after a power cut: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

func checkWholeLines(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("%s is torn: it ends in the middle of a line", path)
	}
	for i, line := range bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n")) {
		if len(b) > 0 && !json.Valid(line) {
			t.Errorf("%s line %d is not whole JSON: %.80q", path, i+1, line)
		}
	}
}

// powerCluster is a 3-node JetStream cluster whose stores are all in one
// folder, on a power-cut file system: a power cut takes the whole cluster
// at once, the case that replication alone does not cover. Its nodes can
// be killed and started again (start) on the same stores.
type powerCluster struct {
	confs []string
	urls  []string
	nodes []*natsNode
}

func startPowerCluster(t *testing.T, dir, syncInterval string) *powerCluster {
	t.Helper()
	c := &powerCluster{}
	clients, routes := make([]string, 3), make([]string, 3)
	for i := range 3 {
		clients[i], routes[i] = freeAddr(t), "nats-route://"+freeAddr(t)
	}
	confDir := t.TempDir()
	for i := range 3 {
		// The store directory exists and is durable before the node first
		// starts, as a provisioned volume is: the node is not asked to
		// make its own store directory's name durable.
		store := filepath.Join(dir, fmt.Sprintf("n%d", i+1))
		if err := os.Mkdir(store, 0o700); err != nil {
			t.Fatal(err)
		}
		syncDirForTest(t, dir)
		conf := fmt.Sprintf("server_name: n%d\nlisten: %s\njetstream { store_dir: %q%s }\ncluster { name: netcore, listen: %s, routes: [ %s ] }\n",
			i+1, clients[i], store, syncInterval, strings.TrimPrefix(routes[i], "nats-route://"), strings.Join(routes, ", "))
		file := filepath.Join(confDir, fmt.Sprintf("n%d.conf", i+1))
		if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		c.confs, c.urls = append(c.confs, file), append(c.urls, "nats://"+clients[i])
	}
	c.start(t)
	return c
}

// start runs the three nodes and waits until JetStream answers.
func (c *powerCluster) start(t *testing.T) {
	t.Helper()
	bin := natsServer(t)
	c.nodes = nil
	for i, conf := range c.confs {
		n := &natsNode{cmd: exec.Command(bin, "-c", conf), url: c.urls[i], exited: make(chan struct{})}
		logs := &testkit.SyncBuffer{}
		n.cmd.Stdout, n.cmd.Stderr = logs, logs
		if err := n.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = n.cmd.Wait(); close(n.exited) }()
		t.Cleanup(func() {
			powerKillNode(n)
			if t.Failed() {
				t.Logf("nats-server n%d:\n%s", i+1, lastLines(logs.String(), 15))
			}
		})
		c.nodes = append(c.nodes, n)
	}
	waitFor(t, "JetStream to answer", 60*time.Second, func() bool {
		nc, err := nats.Connect(strings.Join(c.urls, ","), nats.Timeout(time.Second))
		if err != nil {
			return false
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = js.AccountInfo(ctx)
		return err == nil
	})
}

func powerKillNode(n *natsNode) {
	_ = n.cmd.Process.Kill()
	<-n.exited
}

// A power cut of the whole cluster under load, ingest without the journal
// (ingest-direct.yaml), with JetStream's default sync (every 2 minutes) and
// with `sync_interval: always`: how many acknowledged events each loses, for
// the sync-policy paragraph of docs/scale-out.md (journal_test.go has the
// same cut with the journal).
// The default must lose what it acknowledged since its last sync, and
// always must lose a smaller share; always lost 0%, 7% and 16% in three
// runs here, so no more is claimed. The long variant also cuts a store in
// its first run, before anything of it was ever made durable.
func TestPowerCutOfTheWholeJetStreamCluster(t *testing.T) {
	type jsCase struct {
		name, sync string
		settled    bool // the store was set up and made durable before the load
	}
	cases := []jsCase{{"default sync", "", true}, {"sync_interval always", ", sync_interval: always", true}}
	if *long {
		cases = append(cases, jsCase{"default sync, first run", "", false}, jsCase{"sync_interval always, first run", ", sync_interval: always", false})
	}
	lostShare := map[string]float64{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			disk, cluster, m, env := powerLab(t, tc.sync)
			// Without the journal: the 200 waits for the stream alone.
			ingestConf := options{env: env, config: scaleOutConfig(t, "ingest-direct.yaml")}
			if tc.settled {
				cluster.settleStream(t, disk, env)
			}
			ingest := startProcess(t, ingestConf)
			stop := make(chan struct{})
			events := load(ingest.webhook, "js", 8, stop)
			time.Sleep(3 * time.Second)
			disk.FS.Cut()
			ingest.kill()
			close(stop)
			acked := events()
			if len(acked) == 0 {
				t.Fatal("nothing was acknowledged before the power cut")
			}
			cluster.powerCycle(t, disk, true)

			startProcess(t, options{env: env, config: scaleOutConfig(t, "deliver.yaml")})
			lost := settledLoss(t, m, acked)
			t.Logf("%s: %d events acknowledged before a power cut of all 3 nodes, %d lost (%.1f%%)",
				tc.name, len(acked), lost, 100*float64(lost)/float64(len(acked)))
			lostShare[tc.name] = float64(lost) / float64(len(acked))
		})
	}
	def, always := lostShare["default sync"], lostShare["sync_interval always"]
	if def == 0 {
		t.Error("a power cut lost nothing with JetStream's default sync: the cut did not reach what the default leaves unsynced")
	}
	if always >= def {
		t.Errorf("sync_interval: always lost %.1f%% of acknowledged events, the default %.1f%%: want always to lose less", 100*always, 100*def)
	}
}

// settleStream creates the stream (through an ingest without a journal)
// and shuts the cluster down cleanly, so that the stream exists on disk
// before the load, as one created long before does.
func (c *powerCluster) settleStream(t *testing.T, disk *powercut.TestMount, env map[string]string) {
	t.Helper()
	ingest := startProcess(t, options{env: env, config: scaleOutConfig(t, "ingest-direct.yaml")})
	body, _ := markedBody("setup", 1)
	if status, err := postJSON(ingest.webhook, body); err != nil || status != http.StatusOK {
		t.Fatalf("setting up the stream: %d %v", status, err)
	}
	ingest.kill()
	c.powerCycle(t, disk, false)
}

func scaleOutConfig(t testing.TB, name string) string {
	return filepath.Join(repoRoot(t), "config", "scale-out", name)
}

// powerCycle stops the three nodes with kill -9 and restarts them on the
// disk mounted anew: after a power cut if cut, else after a clean shutdown
// of the machine (everything written is kept).
func (c *powerCluster) powerCycle(t *testing.T, disk *powercut.TestMount, cut bool) {
	t.Helper()
	killNodes := func() {
		for _, n := range c.nodes {
			powerKillNode(n)
		}
	}
	if cut {
		disk.Cut(t, nil, killNodes)
	} else {
		killNodes()
		disk.Remount(t)
	}
	c.start(t)
}

// settledLoss waits until every acknowledged event arrived or deliveries
// stopped for 5 s, and returns how many acknowledged events never arrived.
func settledLoss(t *testing.T, m *meiro, acked []string) int {
	t.Helper()
	last, since := -1, time.Now()
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if n := len(m.received()); n != last {
			last, since = n, time.Now()
		}
		if last >= len(acked) || time.Since(since) > 5*time.Second {
			break
		}
	}
	got, lost := markersAt(t, m), 0
	for _, mk := range acked {
		if got[mk] == 0 {
			lost++
		}
	}
	return lost
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func syncDirForTest(t *testing.T, dir string) {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}
