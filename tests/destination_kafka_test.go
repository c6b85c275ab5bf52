package tests

// The Kafka recipe, config/destinations/kafka.yaml, run by the built binary
// with its disk queue. Kafka is franz-go's in-process Kafka (pkg/kfake) on
// 127.0.0.1, run by the test: no Kafka broker can run on the machines that
// build netcore-connect. It keeps its data in a folder, so that it can be
// stopped and started again on the same port with what it stored.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

const kafkaTopic = "netcore-events" // the recipe's default topic

// kafkaBroker is one kfake broker on a fixed loopback port.
type kafkaBroker struct {
	addr    string
	opts    []kfake.Opt
	cluster *kfake.Cluster
}

func newKafka(t testing.TB, opts ...kfake.Opt) *kafkaBroker {
	t.Helper()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	k := &kafkaBroker{addr: addr, opts: append(opts, kfake.Ports(p), kfake.DataDir(t.TempDir()))}
	t.Cleanup(k.stop)
	return k
}

func (k *kafkaBroker) start(t testing.TB) {
	t.Helper()
	c, err := kfake.NewCluster(k.opts...)
	if err != nil {
		t.Fatalf("starting kfake on %s: %v", k.addr, err)
	}
	k.cluster = c
}

func (k *kafkaBroker) stop() {
	if k.cluster != nil {
		k.cluster.Close()
		k.cluster = nil
	}
}

func (k *kafkaBroker) admin(t testing.TB) *kadm.Client {
	t.Helper()
	kc, err := kgo.NewClient(kgo.SeedBrokers(k.addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	return kadm.NewClient(kc)
}

// delivered reads the whole topic and returns how often each marker came,
// checking that every record is keyed by its event_id and has the headers.
func (k *kafkaBroker) delivered(t testing.TB) map[string]int {
	t.Helper()
	kc, err := kgo.NewClient(kgo.SeedBrokers(k.addr), kgo.ConsumeTopics(kafkaTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	ends, err := kadm.NewClient(kc).ListEndOffsets(context.Background(), kafkaTopic)
	if err != nil || ends.Error() != nil {
		return nil // the topic is not there (yet)
	}
	var want int64
	ends.Each(func(o kadm.ListedOffset) { want += o.Offset })
	got := map[string]int{}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for n := int64(0); n < want; {
		fs := kc.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", n, want)
		}
		fs.EachRecord(func(r *kgo.Record) {
			n++
			got[checkRecord(t, r)]++
		})
	}
	return got
}

// checkRecord checks a record as a consumer would and returns its marker.
func checkRecord(t testing.TB, r *kgo.Record) string {
	var ev struct {
		Marker  string `json:"marker"`
		EventID string `json:"event_id"`
	}
	if err := json.Unmarshal(r.Value, &ev); err != nil {
		t.Fatalf("record is not JSON: %s", r.Value)
	}
	if ev.EventID == "" || string(r.Key) != ev.EventID {
		t.Errorf("record %s has key %q, want its event_id", r.Value, r.Key)
	}
	// The event as posted (markedBody: numbers too big for a float kept as
	// sent), with what the queue's explode adds.
	for _, part := range []string{`"big":12345678901234567890`, `"panel_name":"load"`, `"event_time":"2024-03-01T04:45:00Z"`} {
		if !strings.Contains(string(r.Value), part) {
			t.Errorf("record %s lacks %s", r.Value, part)
		}
	}
	headers := map[string]string{}
	for _, h := range r.Headers {
		headers[h.Key] = string(h.Value)
	}
	if headers["netcore_panel"] != "load" || headers["netcore_event_id"] != ev.EventID || headers["netcore_request_id"] == "" {
		t.Errorf("record %s has headers %v", ev.Marker, headers)
	}
	return ev.Marker
}

func waitInKafka(t testing.TB, k *kafkaBroker, markers []string, timeout time.Duration) map[string]int {
	t.Helper()
	var got map[string]int
	waitFor(t, fmt.Sprintf("%d acknowledged events in Kafka", len(markers)), timeout, func() bool {
		got = k.delivered(t)
		for _, m := range markers {
			if got[m] == 0 {
				return false
			}
		}
		return true
	})
	return got
}

// startKafkaRecipe runs the recipe against k, in dir (holding data/; empty:
// a new folder).
func startKafkaRecipe(t testing.TB, k *kafkaBroker, dir string) *process {
	t.Helper()
	p := startProcess(t, options{
		config: filepath.Join(repoRoot(t), "config", "destinations", "kafka.yaml"),
		env:    map[string]string{"KAFKA_BROKERS": k.addr},
		dir:    dir,
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("netcore-connect log (stdout):\n%s", p.stdout.String())
		}
	})
	return p
}

// postWhileAway stops the broker, posts, and waits until the log shows
// deliveries refused by the absent broker; it returns the acked markers.
func postWhileAway(t *testing.T, k *kafkaBroker, p *process, prefix string, posts int) []string {
	t.Helper()
	k.stop()
	refused := func() int { return strings.Count(p.stdout.String(), "unable to open connection to broker") }
	before := refused()
	acked := postMarked(t, p, prefix, posts)
	waitFor(t, "deliveries refused by the absent broker", 30*time.Second, func() bool { return refused() > before })
	return acked
}

// The recipe lints clean (its config unit tests run with the others, by
// TestConfigsLintAndPassTheirUnitTests), and `list outputs` shows kafka.
func TestKafkaRecipeLints(t *testing.T) {
	root := repoRoot(t)
	lint := exec.Command(binary, "lint", filepath.Join(root, "config", "destinations", "kafka.yaml"))
	lint.Env = append(os.Environ(), "KAFKA_BROKERS=127.0.0.1:9092")
	if out, err := lint.CombinedOutput(); err != nil {
		t.Errorf("netcore-connect lint: %v\n%s", err, out)
	}
	out, err := exec.Command(binary, "list", "outputs").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "  - kafka\n") {
		t.Errorf("netcore-connect list outputs: %v\n%s", err, out)
	}
}

// The broker goes away and comes back: the events acknowledged to Netcore
// meanwhile wait in the disk queue and arrive once it is back, and so do
// those written before it went away (kfake keeps them in its folder).
func TestKafkaRecipeBrokerAwayAndBack(t *testing.T) {
	k := newKafka(t, kfake.NumBrokers(1), kfake.SeedTopics(3, kafkaTopic))
	k.start(t)
	p := startKafkaRecipe(t, k, "")

	before := postMarked(t, p, "before", 10)
	waitInKafka(t, k, before, 30*time.Second)

	during := postWhileAway(t, k, p, "during", 10)
	waitQueued(t, p, len(during))
	k.start(t)

	got := waitInKafka(t, k, append(before, during...), 60*time.Second)
	repeats := 0
	for _, n := range got {
		repeats += n - 1
	}
	t.Logf("%d events acknowledged (%d while the broker was away), all in Kafka after it came back; %d written twice",
		len(before)+len(during), len(during), repeats)
}

// Stopped (SIGTERM) while the broker is away, with events stuck on their way
// to it: the process still stops in time (Benthos gives up on the output
// after about 15 s), and the next start delivers them.
func TestKafkaRecipeStopsWhileBrokerIsAway(t *testing.T) {
	k := newKafka(t, kfake.NumBrokers(1), kfake.SeedTopics(3, kafkaTopic))
	k.start(t)
	dir := t.TempDir()
	p := startKafkaRecipe(t, k, dir)
	waitInKafka(t, k, postMarked(t, p, "warm", 1), 30*time.Second)

	acked := postWhileAway(t, k, p, "stuck", 6)
	start := time.Now()
	p.stop(t) // fails the test if it takes over 30s
	t.Logf("stopped %s after SIGTERM with %d events undelivered", time.Since(start).Round(time.Millisecond), len(acked))

	k.start(t)
	startKafkaRecipe(t, k, dir)
	waitInKafka(t, k, acked, 60*time.Second)
}

// Started while Kafka is down, the receiver is ready and stores posts; the
// events arrive once Kafka is up.
func TestKafkaRecipeStartsWhileKafkaIsDown(t *testing.T) {
	k := newKafka(t, kfake.NumBrokers(1), kfake.SeedTopics(3, kafkaTopic))
	p := startKafkaRecipe(t, k, "") // returns once /ready answers 200
	acked := postMarked(t, p, "early", 4)
	if !strings.Contains(p.stdout.String(), "No Kafka broker of "+k.addr+" answered") {
		t.Error("the log does not say that no broker answered")
	}
	waitQueued(t, p, len(acked))
	k.start(t)
	waitInKafka(t, k, acked, 60*time.Second)
}

// A topic that does not exist: a clear error in the log, the events stay in
// the queue, the topic is not created (though the broker would allow it),
// and the events arrive once it is created.
func TestKafkaRecipeMissingTopic(t *testing.T) {
	k := newKafka(t, kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	k.start(t)
	p := startKafkaRecipe(t, k, "")

	acked := postMarked(t, p, "missing", 4)
	waitFor(t, "the error naming the missing topic", 30*time.Second, func() bool {
		return strings.Contains(p.stdout.String(), `topic \"netcore-events\" does not exist: create it`)
	})
	waitQueued(t, p, len(acked))
	admin := k.admin(t)
	topics, err := admin.ListTopics(context.Background())
	if err != nil || topics.Has(kafkaTopic) {
		t.Fatalf("topic created by the output, or listing failed: %v", err)
	}

	if _, err := admin.CreateTopic(context.Background(), 3, 1, nil, kafkaTopic); err != nil {
		t.Fatal(err)
	}
	waitInKafka(t, k, acked, 60*time.Second)
	waitQueued(t, p, 0)
}
