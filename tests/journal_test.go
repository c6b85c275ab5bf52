package tests

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/netcore-connect/netcore-connect/internal/testing/powercut"
)

// streamLastSeq is the stream's last sequence number: it only grows with
// what the cluster acknowledged, so a smaller one after a power cut means
// the cut lost acknowledged events. A loaded cluster (or one recovering
// its stream) may not answer in time.
func streamLastSeq(urls []string) (last uint64, err error) {
	err = withStream(urls, func(ctx context.Context, js jetstream.JetStream) error {
		s, err := js.Stream(ctx, "NETCORE_EVENTS")
		if err == nil {
			last = s.CachedInfo().State.LastSeq
		}
		return err
	})
	return last, err
}

// repeatsAt counts the deliveries beyond each event's first.
func repeatsAt(t *testing.T, m *meiro) (n int) {
	for _, c := range markersAt(t, m) {
		n += max(0, c-1)
	}
	return n
}

// waitStreamDrained waits until the stream holds no event and stores no new
// one for 2 s: everything published again was delivered, or dropped as a
// repeat.
func waitStreamDrained(t *testing.T, urls []string, timeout time.Duration) {
	t.Helper()
	var last uint64
	waitFor(t, "the stream to drain", timeout, func() bool {
		drained := false
		if err := withStream(urls, func(ctx context.Context, js jetstream.JetStream) error {
			s, err := js.Stream(ctx, "NETCORE_EVENTS")
			if err != nil {
				return err
			}
			state := s.CachedInfo().State
			drained = state.Msgs == 0 && state.LastSeq == last
			last = state.LastSeq
			return nil
		}); err != nil {
			return false
		}
		time.Sleep(2 * time.Second)
		return drained
	})
}

// powerLab is the power-cut tests' set-up: the power-cut file system, a
// 3-node cluster on it with sync (a fragment of its jetstream block, "" for
// the default), a Meiro Events stand-in, and the environment the scale-out
// configs take.
func powerLab(t *testing.T, sync string) (*powercut.TestMount, *powerCluster, *meiro, map[string]string) {
	t.Helper()
	disk := powercut.MountForTest(t)
	cluster := startPowerCluster(t, disk.Dir, sync)
	m := newMeiro(t)
	return disk, cluster, m, scaleOutEnv(strings.Join(cluster.urls, ","), m)
}

// journalLab is powerLab at the default sync, with the stream settled there
// with 3 replicas, and its config for recoverStream.
func journalLab(t *testing.T) (*powercut.TestMount, *powerCluster, *meiro, map[string]string, jetstream.StreamConfig) {
	t.Helper()
	disk, cluster, m, env := powerLab(t, "")
	cluster.settleStream(t, disk, env)
	return disk, cluster, m, env, streamConfigOf(t, cluster.urls)
}

// leaderlessFor is how long a stream may have no leader once its cluster is
// back before the tests do what docs/scale-out.md tells an operator to.
const leaderlessFor = 60 * time.Second

// streamConfigOf is the stream's config, as the plugins created it.
func streamConfigOf(t *testing.T, urls []string) jetstream.StreamConfig {
	t.Helper()
	var cfg jetstream.StreamConfig
	waitFor(t, "the stream's config", 30*time.Second, func() bool {
		return withStream(urls, func(ctx context.Context, js jetstream.JetStream) error {
			s, err := js.Stream(ctx, "NETCORE_EVENTS")
			if err == nil {
				cfg = s.CachedInfo().Config
			}
			return err
		}) == nil
	})
	return cfg
}

// recoverStream waits for the stream to have a leader once the cluster is
// back. With none after leaderlessFor (nats-server#7564: a raft snapshot
// synced ahead of the stream's data leaves every replica waiting for a
// leader, and no API elects one) it deletes the stream and creates it
// again with cfg, as docs/scale-out.md tells an operator to, and says so;
// a stream the cluster lost is created again too. Either way the stream
// loses all it held: the journals publish again what they retain.
func recoverStream(t *testing.T, urls []string, cfg jetstream.StreamConfig) (recreated bool) {
	t.Helper()
	deadline := time.Now().Add(leaderlessFor)
	var last error
	for time.Now().Before(deadline) {
		last = withStream(urls, func(ctx context.Context, js jetstream.JetStream) error {
			s, err := js.Stream(ctx, cfg.Name)
			if err != nil {
				return err
			}
			info, err := s.Info(ctx)
			if err == nil && (info.Cluster == nil || info.Cluster.Leader == "") {
				err = errors.New("no leader")
			}
			return err
		})
		if last == nil {
			return false
		}
		if errors.Is(last, jetstream.ErrStreamNotFound) {
			break
		}
		time.Sleep(time.Second)
	}
	t.Logf("the stream had no leader %s after the cluster was back (%v): deleting it and creating it again (nats-server#7564)", leaderlessFor, last)
	waitFor(t, "the stream deleted and created again", time.Minute, func() bool {
		return withStream(urls, func(ctx context.Context, js jetstream.JetStream) error {
			if err := js.DeleteStream(ctx, cfg.Name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
				return err
			}
			_, err := js.CreateStream(ctx, cfg)
			return err
		}) == nil
	})
	return true
}

// withStream calls f with a JetStream client of the cluster, for 5 s.
func withStream(urls []string, f func(context.Context, jetstream.JetStream) error) error {
	nc, err := nats.Connect(strings.Join(urls, ","), nats.Timeout(2*time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return f(ctx, js)
}

// The whole cluster (JetStream at its default sync, every 2 minutes) and
// every ingest instance lose power together under load, with each instance's
// journal on the power-cut file system too; then all start again. Every
// event answered 200 is delivered: the cluster lost what it had acknowledged
// since its last sync (the stream's last sequence goes back), the journals
// still held it and published it again after their restart. Once in CI, 3
// times at random moments with -long, the second torn. The same cut without
// the journal loses events: TestPowerCutOfTheWholeJetStreamCluster.
//
// A cut can also leave the stream with no leader for good (nats-server#7564,
// https://github.com/nats-io/nats-server/issues/7564, open in 2.15): after
// leaderlessFor the test deletes the stream and creates it again, as
// docs/scale-out.md tells an operator to, and counts the cuts that needed
// it. That is a workaround for the server's defect, and it is not free: the
// stream loses all it held, here covered because the journals still retain
// every event of the test; in general what the stream held beyond the
// journals' retention (a backlog the deliverers had not taken) is lost.
func TestJournalSavesWhatAPowerCutOfTheWholeClusterLoses(t *testing.T) {
	cuts := 1
	if *long {
		cuts = 3
	}
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, seed))
	t.Logf("cut moments from seed %d", seed)
	disk, cluster, m, env, cfg := journalLab(t)
	// The deliverer is off the cut disk: it outlives the cuts, and delivers
	// what the cluster kept and what the journals publish again.
	deliverer := startProcess(t, options{env: env, config: scaleOutConfig(t, "deliver.yaml")})
	var dirs []string
	for i := range 2 {
		dir := disk.Path(fmt.Sprintf("ingest%d", i))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	syncDirForTest(t, disk.Dir)
	startIngest := func() (ingest []*process) {
		for _, dir := range dirs {
			ingest = append(ingest, startProcess(t, options{env: env, config: scaleOutConfig(t, "ingest.yaml"), dir: dir, cwd: t.TempDir()}))
		}
		return ingest
	}

	var acked []string
	var lostByCluster uint64
	recreated := 0
	for c := range cuts {
		ingest := startIngest()
		stop := make(chan struct{})
		var results []func() []string
		for i, p := range ingest {
			results = append(results, load(p.webhook, fmt.Sprintf("cut%d-%d", c, i), 4, stop))
		}
		time.Sleep(time.Duration(2000+rng.IntN(2000)) * time.Millisecond)
		before, beforeErr := streamLastSeq(cluster.urls)
		var kept func() bool
		if c == 1 {
			kept = func() bool { return rng.IntN(2) == 0 }
		}
		disk.Cut(t, kept, func() {
			for _, p := range ingest {
				p.kill()
			}
			for _, n := range cluster.nodes {
				powerKillNode(n)
			}
		})
		close(stop)
		n := 0
		for _, r := range results {
			got := r()
			n += len(got)
			acked = append(acked, got...)
		}
		if n == 0 {
			t.Fatalf("cut %d: nothing was acknowledged before the power cut", c)
		}
		cluster.start(t)
		if recoverStream(t, cluster.urls, cfg) {
			recreated++
		}
		var after uint64
		var afterErr error
		waitFor(t, "the stream's state after the cut", time.Minute, func() bool {
			after, afterErr = streamLastSeq(cluster.urls)
			return afterErr == nil
		})
		if beforeErr != nil {
			t.Logf("cut %d: the stream's state could not be read before it (%v): not counted", c, beforeErr)
		} else if after < before {
			lostByCluster += before - after
		}
		t.Logf("cut %d (torn: %t): %d events acknowledged by the ingest instances; the stream's last sequence went from at least %d to %d",
			c, kept != nil, n, before, after)
	}
	if lostByCluster == 0 {
		t.Fatal("no cut lost events the cluster had acknowledged: the test shows nothing of the journal")
	}
	startIngest()
	waitDelivered(t, m, acked, 3*time.Minute)
	// What the journals published again and the cluster had delivered
	// before it lost it comes to the deliverer again: it drops it.
	waitStreamDrained(t, cluster.urls, time.Minute)
	repeats, dropped := repeatsAt(t, m), sumMetric(scrape(t, deliverer), "netcore_repeats_dropped_total", "")
	t.Logf("%d power cuts of the whole cluster and both ingest instances: the cluster lost at least %d acknowledged events; all %d events answered 200 delivered, %d deliveries beyond the first, %v repeats dropped by the deliverer; the stream deleted and created again after %d of the cuts (no leader)",
		cuts, lostByCluster, len(acked), repeats, dropped, recreated)
	if dropped == 0 {
		t.Error("the deliverer dropped no repeat: no event it had delivered came again after the cut")
	}
	if repeats > 0 {
		t.Errorf("%d events were delivered again after the journals published them again", repeats)
	}
}

// JetStream down for 30 s: ingest keeps answering 200, from its journal,
// until the journal is full, then 503; killed with -9 with events
// journalled and never published, it publishes them once it and the
// cluster are back. Every event answered 200 is delivered.
func TestJournalAnswersThroughAJetStreamOutageAndAKill(t *testing.T) {
	cluster := startPowerCluster(t, t.TempDir(), "")
	m := newMeiro(t)
	env := scaleOutEnv(strings.Join(cluster.urls, ","), m)
	// A bound reached within the outage; a retention shorter than the
	// outage, so that what was published before it leaves room.
	env["NETCORE_JOURNAL_MAX_BYTES"], env["NETCORE_JOURNAL_RETAIN"] = "4194304", "5s"
	startProcess(t, options{env: env, config: scaleOutConfig(t, "deliver.yaml")})
	dir := t.TempDir()
	ingestConf := options{env: env, config: scaleOutConfig(t, "ingest.yaml"), dir: dir}
	ingest := startProcess(t, ingestConf)

	stop := make(chan struct{})
	up := load(ingest.webhook, "up", 2, stop)
	time.Sleep(2 * time.Second)
	close(stop)
	acked := up()

	for _, n := range cluster.nodes {
		powerKillNode(n)
	}
	stop = make(chan struct{})
	during, answered := loadCounting(ingest.webhook, "outage", 4, stop)
	time.Sleep(30 * time.Second)
	close(stop)
	journalled := during()
	if len(journalled) == 0 || answered.of(http.StatusServiceUnavailable) == 0 {
		t.Fatalf("during the outage %d posts answered 200 and %d 503: want 200s until the journal was full, then 503s",
			answered.of(http.StatusOK), answered.of(http.StatusServiceUnavailable))
	}
	if other := answered.of(0) + answered.of(http.StatusInternalServerError); other > 0 {
		t.Errorf("%d posts during the outage got neither 200 nor 503", other)
	}
	ingest.kill() // -9, with the events journalled in the outage never published
	acked = append(acked, journalled...)

	cluster.start(t)
	ingest = startProcess(t, ingestConf)
	waitDelivered(t, m, acked, 2*time.Minute)
	// Once the backlog is published and its retention over, the journal
	// has room again.
	time.Sleep(7 * time.Second)
	stop = make(chan struct{})
	back := load(ingest.webhook, "back", 2, stop)
	time.Sleep(2 * time.Second)
	close(stop)
	if got := back(); len(got) == 0 {
		t.Error("no post answered 200 once the cluster was back and the backlog published")
	} else {
		acked = append(acked, got...)
	}
	waitDelivered(t, m, acked, time.Minute)
	t.Logf("a 30 s outage of the cluster: %d events answered 200 from the journal, then %d posts 503 (the journal full); killed -9 and restarted: all %d events answered 200 delivered, %d deliveries beyond the first",
		len(journalled), answered.of(http.StatusServiceUnavailable), len(acked), repeatsAt(t, m))
}

// The whole cluster loses power under load while the ingest instance, its
// journal on a disk of its own, stays up: the cluster loses what it
// acknowledged since its last sync, and once it is back the journal
// publishes again what it retains, by itself (its NATS connection came back
// after losing every server), with no restart. Every event answered 200 is
// delivered; then `journal republish` asks for the same through the
// instance's HTTP server and says how much it handed out. The deliverer
// starts once the loss is seen, so that nothing the cluster lost was
// delivered before it lost it.
func TestJournalPublishesAgainWhatACutOfTheClusterAloneLost(t *testing.T) {
	disk, cluster, m, env, cfg := journalLab(t)
	ingest := startProcess(t, options{env: env, config: scaleOutConfig(t, "ingest.yaml")})

	stop := make(chan struct{})
	results := load(ingest.webhook, "alone", 4, stop)
	time.Sleep(3 * time.Second)
	before, err := streamLastSeq(cluster.urls)
	if err != nil || before < 2 {
		t.Fatalf("the stream's last sequence before the cut: %d, %v: want events stored", before, err)
	}
	cutAt := time.Now()
	disk.Cut(t, nil, func() {
		for _, n := range cluster.nodes {
			powerKillNode(n)
		}
	})
	time.Sleep(time.Second) // the journal answers alone meanwhile
	close(stop)
	acked := results()
	cluster.start(t)
	// The journal publishes again as soon as the cluster is back: whether
	// the cut lost the stream's tail is told by its message at before,
	// which nothing but the cut removes (no deliverer runs yet).
	lost := recoverStream(t, cluster.urls, cfg)
	if !lost {
		waitFor(t, "the stream's message at its last sequence before the cut", time.Minute, func() bool {
			lost, err = storedSince(cluster.urls, before, cutAt)
			return err == nil
		})
	}
	if !lost {
		t.Fatalf("the stream still holds its message %d from before the cut: the cut lost nothing the cluster had acknowledged, the test shows nothing", before)
	}
	startProcess(t, options{env: env, config: scaleOutConfig(t, "deliver.yaml")})
	waitDelivered(t, m, acked, time.Minute)
	republished := sumMetric(scrape(t, ingest), "netcore_journal_republished_events_total", "")
	if republished == 0 {
		t.Error("netcore_journal_republished_events_total is 0 after the journal published again")
	}
	if log := ingest.stderr.String() + ingest.stdout.String(); !strings.Contains(log, "after losing every server") {
		t.Error("the ingest's log does not say why it published again")
	}

	out, err := exec.Command(binary, "journal", "republish", "--url", ingest.admin).CombinedOutput()
	if err != nil || !regexp.MustCompile(`handed out again [1-9][0-9]* records \([1-9][0-9]* events\) from 1 journals`).Match(out) {
		t.Errorf("journal republish: %v: %s", err, out)
	}
	waitFor(t, "the metric to count the second republish", 5*time.Second, func() bool {
		return sumMetric(scrape(t, ingest), "netcore_journal_republished_events_total", "") > republished
	})
	t.Logf("a power cut of the cluster alone, the stream's message %d lost: all %d events answered 200 delivered with the ingest up throughout (%v events handed out again), %d deliveries beyond the first; journal republish: %s",
		before, len(acked), republished, repeatsAt(t, m), strings.TrimSpace(string(out)))
}

// storedSince says whether the stream's message seq is gone, or was stored
// after at: either way the one it held before at is lost.
func storedSince(urls []string, seq uint64, at time.Time) (lost bool, err error) {
	err = withStream(urls, func(ctx context.Context, js jetstream.JetStream) error {
		s, err := js.Stream(ctx, "NETCORE_EVENTS")
		if err != nil {
			return err
		}
		msg, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			lost = true
			return nil
		}
		if err == nil {
			lost = msg.Time.After(at)
		}
		return err
	})
	return lost, err
}
