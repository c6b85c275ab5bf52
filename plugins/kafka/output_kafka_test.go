package kafka

// These tests write to franz-go's in-process Kafka (pkg/kfake) on 127.0.0.1:
// no Kafka broker can run on the machines that build netcore-connect. kfake
// speaks the Kafka protocol (produce, metadata, SASL, TLS) to the same
// client the output uses; what it cannot show is a real cluster's
// replication.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
)

func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// newOutput parses conf (YAML of the kafka output) and connects.
func newOutput(t *testing.T, conf string) *output {
	t.Helper()
	return newOutputLogged(t, conf, io.Discard)
}

// newOutputLogged is newOutput with the output's log written to log.
func newOutputLogged(t *testing.T, conf string, log io.Writer) *output {
	t.Helper()
	parsed, err := outputSpec().ParseYAML(conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	logger := service.NewLoggerFromSlog(slog.New(slog.NewTextHandler(log, nil)))
	o, err := newOutputFromConfig(parsed, service.MockResources(service.MockResourcesOptUseLogger(logger)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.Close(context.Background()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := o.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	return o
}

// consume reads n records of topic from its start, failing after 20 s.
func consume(t *testing.T, c *kfake.Cluster, topic string, n int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	opts = append(opts, kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	kc, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n {
		fs := kc.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s before the deadline", len(out), n, topic)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

func topicExists(t *testing.T, c *kfake.Cluster, topic string) bool {
	t.Helper()
	kc, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	topics, err := kadm.NewClient(kc).ListTopics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return topics.Has(topic)
}

func event(body string, meta map[string]string) *service.Message {
	m := service.NewMessage([]byte(body))
	for k, v := range meta {
		m.MetaSetMut(k, v)
	}
	return m
}

func TestRecordCarriesEventKeyAndHeaders(t *testing.T) {
	c := newCluster(t, kfake.SeedTopics(3, "netcore-events"))
	o := newOutput(t, fmt.Sprintf("seed_brokers: [ %q ]", strings.Join(c.ListenAddrs(), ",")))
	body := `{"msgid":"301","big":12345678901234567890,"event_id":"374b28176ebfd81073688b323ec31b2e"}`
	msg := event(body, map[string]string{
		"netcore_event_id": "374b28176ebfd81073688b323ec31b2e",
		"netcore_panel":    "email_open",
		"http_user_agent":  "not a netcore_ key: no header",
	})
	if err := o.WriteBatch(context.Background(), service.MessageBatch{msg}); err != nil {
		t.Fatal(err)
	}
	r := consume(t, c, "netcore-events", 1)[0]
	if string(r.Value) != body {
		t.Errorf("value %s, want the event exactly as sent: %s", r.Value, body)
	}
	if string(r.Key) != "374b28176ebfd81073688b323ec31b2e" {
		t.Errorf("key %q, want the event_id", r.Key)
	}
	headers := map[string]string{}
	for _, h := range r.Headers {
		headers[h.Key] = string(h.Value)
	}
	want := map[string]string{"netcore_event_id": "374b28176ebfd81073688b323ec31b2e", "netcore_panel": "email_open"}
	if fmt.Sprint(headers) != fmt.Sprint(want) {
		t.Errorf("headers %v, want %v", headers, want)
	}
}

// Events of one key arrive in the order the engine handed them over, across
// many batches, with three brokers and keys spread over partitions.
func TestOrderPerKeyThroughTheEngine(t *testing.T) {
	const keys, perKey = 5, 200
	c := newCluster(t, kfake.SeedTopics(6, "ordered"))
	b := service.NewStreamBuilder()
	if err := b.AddOutputYAML(fmt.Sprintf(`
kafka:
  seed_brokers: [ %q ]
  topic: ordered
  key: ${! @user }
  max_in_flight: 1
  batching:
    count: 37
    period: 5ms
`, strings.Join(c.ListenAddrs(), ","))); err != nil {
		t.Fatal(err)
	}
	send, err := b.AddBatchProducerFunc()
	if err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	go func() { _ = stream.Run(ctx) }()
	t.Cleanup(func() { _ = stream.Stop(context.Background()) })

	// Keys interleave; each input batch of 100 is cut into output batches of 37.
	var batch service.MessageBatch
	for seq := range perKey {
		for k := range keys {
			batch = append(batch, event(fmt.Sprintf(`{"user":"u%d","seq":%d}`, k, seq), map[string]string{"user": fmt.Sprintf("u%d", k)}))
			if len(batch) == 100 {
				if err := send(ctx, batch); err != nil {
					t.Fatalf("batch not acknowledged: %v", err)
				}
				batch = nil
			}
		}
	}
	records := consume(t, c, "ordered", keys*perKey)
	next := map[string]int{}
	partition := map[string]int32{}
	for _, r := range records {
		var user string
		var seq int
		if _, err := fmt.Sscanf(string(r.Value), `{"user":"%2s","seq":%d}`, &user, &seq); err != nil {
			t.Fatalf("record %s: %v", r.Value, err)
		}
		if string(r.Key) != user {
			t.Fatalf("record %s has key %q", r.Value, r.Key)
		}
		if p, seen := partition[user]; seen && p != r.Partition {
			t.Errorf("key %s on partitions %d and %d", user, p, r.Partition)
		}
		partition[user] = r.Partition
		if seq != next[user] {
			t.Fatalf("key %s: got seq %d, want %d", user, seq, next[user])
		}
		next[user]++
	}
	if len(next) != keys {
		t.Errorf("%d keys arrived, want %d", len(next), keys)
	}
}

// A topic that does not exist is not created (though the brokers would
// allow it): its events fail one by one with an error naming the topic,
// and the events of the same batch for an existing topic are written.
func TestMissingTopicFailsOnlyItsEvents(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.SeedTopics(1, "exists"))
	o := newOutput(t, fmt.Sprintf(`
seed_brokers: [ %q ]
topic: ${! @topic }
`, c.ListenAddrs()[0]))
	batch := service.MessageBatch{
		event(`{"n":0}`, map[string]string{"topic": "exists"}),
		event(`{"n":1}`, map[string]string{"topic": "missing"}),
		event(`{"n":2}`, map[string]string{"topic": "exists"}),
		event(`{"n":3}`, map[string]string{"topic": "missing"}),
	}
	index := batch.Index()
	err := o.WriteBatch(context.Background(), batch)
	var berr *service.BatchError
	if !errors.As(err, &berr) {
		t.Fatalf("got %v, want a BatchError", err)
	}
	if !strings.Contains(err.Error(), `2 of 4 events not written`) || !strings.Contains(err.Error(), `topic "missing" does not exist`) {
		t.Errorf("error %q does not say what failed and why", err)
	}
	var failed []int
	berr.WalkMessagesIndexedBy(index, func(i int, _ *service.Message, err error) bool {
		if err != nil {
			failed = append(failed, i)
		}
		return true
	})
	if fmt.Sprint(failed) != "[1 3]" {
		t.Errorf("failed events %v, want [1 3]", failed)
	}
	if got := consume(t, c, "exists", 2); string(got[0].Value) != `{"n":0}` || string(got[1].Value) != `{"n":2}` {
		t.Errorf("the existing topic holds %s, %s", got[0].Value, got[1].Value)
	}
	if topicExists(t, c, "missing") {
		t.Error("the output created the missing topic without create_topic")
	}
}

// Through the engine, with the events of one output batch coming from
// separate upstream transactions (as from the disk queue): only the events
// that failed are refused upstream, the others are acknowledged.
func TestEngineAcksOnlyTheWrittenEventsOfABatch(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "exists"))
	b := service.NewStreamBuilder()
	if err := b.AddOutputYAML(fmt.Sprintf(`
kafka:
  seed_brokers: [ %q ]
  topic: ${! @topic }
  batching: { count: 4, period: 10s }
`, c.ListenAddrs()[0])); err != nil {
		t.Fatal(err)
	}
	send, err := b.AddProducerFunc()
	if err != nil {
		t.Fatal(err)
	}
	stream, err := b.Build()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() { _ = stream.Run(ctx) }()
	t.Cleanup(func() { _ = stream.Stop(context.Background()) })

	topics := []string{"exists", "missing", "exists", "missing"}
	errs := make([]chan error, len(topics))
	for i, topic := range topics {
		errs[i] = make(chan error, 1)
		go func() { errs[i] <- send(ctx, event(fmt.Sprintf(`{"n":%d}`, i), map[string]string{"topic": topic})) }()
	}
	for i, topic := range topics {
		err := <-errs[i]
		if topic == "exists" && err != nil {
			t.Errorf("event %d (written) refused upstream: %v", i, err)
		}
		if topic == "missing" && (err == nil || !strings.Contains(err.Error(), `topic "missing" does not exist`)) {
			t.Errorf("event %d (not written): %v, want the error naming the topic", i, err)
		}
	}
	if got := consume(t, c, "exists", 2); len(got) != 2 {
		t.Errorf("%d records written", len(got))
	}
}

func TestEventTooLargeSaysWhichLimit(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "netcore-events"))
	o := newOutput(t, fmt.Sprintf("seed_brokers: [ %q ]", c.ListenAddrs()[0]))
	big := `{"blob":"` + strings.Repeat("x", 1<<20) + `"}`
	err := o.WriteBatch(context.Background(), service.MessageBatch{event(big, nil)})
	if err == nil || !strings.Contains(err.Error(), "larger than the brokers accept") {
		t.Errorf("writing a 1 MiB event: %v", err)
	}
}

func TestCreateTopicWhenAsked(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	o := newOutput(t, fmt.Sprintf("seed_brokers: [ %q ]\ncreate_topic: true\ntopic: fresh", c.ListenAddrs()[0]))
	if err := o.WriteBatch(context.Background(), service.MessageBatch{event(`{}`, nil)}); err != nil {
		t.Fatal(err)
	}
	if !topicExists(t, c, "fresh") {
		t.Error("topic not created with create_topic: true")
	}
}

// Brokers that refuse to create topics: the error says so.
func TestCreateTopicRefusedByTheBrokers(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1))
	o := newOutput(t, fmt.Sprintf("seed_brokers: [ %q ]\ncreate_topic: true\ntopic: fresh", c.ListenAddrs()[0]))
	err := o.WriteBatch(context.Background(), service.MessageBatch{event(`{}`, nil)})
	if err == nil || !strings.Contains(err.Error(), "the brokers did not create it") {
		t.Errorf("got %v, want an error saying the brokers did not create the topic", err)
	}
}

// Every codec writes records a consumer reads back unchanged.
func TestCompressionCodecs(t *testing.T) {
	c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "none", "gzip", "snappy", "lz4", "zstd"))
	value := strings.Repeat(`{"channel":"email","event_params":{"identity":"a@example.com"}}`, 20)
	for codec := range compressionCodecs {
		o := newOutput(t, fmt.Sprintf("seed_brokers: [ %q ]\ntopic: %s\ncompression: %s", c.ListenAddrs()[0], codec, codec))
		if err := o.WriteBatch(context.Background(), service.MessageBatch{event(value, nil)}); err != nil {
			t.Fatalf("%s: %v", codec, err)
		}
		if got := consume(t, c, codec, 1)[0]; string(got.Value) != value {
			t.Errorf("%s: read back %d bytes, want %d", codec, len(got.Value), len(value))
		}
	}
}

// TLS with a CA file, and each SASL mechanism; a wrong password fails the
// connect with an error that says where to look.
func TestTLSAndSASL(t *testing.T) {
	cert := testkit.SelfSignedCert(t, t.TempDir())
	serverTLS, caFile := cert.Server, cert.CertFile
	for _, mech := range []string{saslPlain, saslScramSHA256, saslScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			c := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "netcore-events"), kfake.TLS(serverTLS),
				kfake.EnableSASL(), kfake.Superuser(mech, "netcore", "s3cret"))
			conf := func(password string) string {
				return fmt.Sprintf(`
seed_brokers: [ %q ]
timeout: 1s
tls: { enabled: true, root_cas_file: %q }
sasl: { mechanism: %s, user: netcore, password: %s }
`, c.ListenAddrs()[0], caFile, mech, password)
			}
			o := newOutput(t, conf("s3cret"))
			if err := o.WriteBatch(context.Background(), service.MessageBatch{event(`{"ok":true}`, nil)}); err != nil {
				t.Fatal(err)
			}
			// Read back over the same TLS and credentials.
			if got := consume(t, c, "netcore-events", 1, o.client.opts...); string(got[0].Value) != `{"ok":true}` {
				t.Errorf("read back %s", got[0].Value)
			}

			// A wrong password: the log says where to look at connect, and
			// no event is acknowledged.
			var log strings.Builder
			bad := newOutputLogged(t, conf("wrong"), &log)
			if !strings.Contains(log.String(), "check seed_brokers, tls and sasl") {
				t.Errorf("log at connect with a wrong password: %q", log.String())
			}
			err := bad.WriteBatch(context.Background(), service.MessageBatch{event(`{"ok":false}`, nil)})
			if err == nil || !strings.Contains(err.Error(), "acknowledged the event within 1s") || !strings.Contains(err.Error(), "tls and sasl") {
				t.Errorf("write with a wrong password: %v, want an error saying where to look", err)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for conf, want := range map[string]string{
		`seed_brokers: [ " , " ]`: "seed_brokers is empty",
		`{ seed_brokers: [ "127.0.0.1:1" ], sasl: { mechanism: PLAIN } }`: "sasl.user is empty",
	} {
		parsed, err := outputSpec().ParseYAML(conf, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := newOutputFromConfig(parsed, service.MockResources()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an error saying %q", conf, err, want)
		}
	}
}

func TestSeedBrokersSplitOnCommas(t *testing.T) {
	parsed, err := outputSpec().ParseYAML(`seed_brokers: [ "a:9092, b:9092", "c:9092" ]`, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := seedBrokers(parsed)
	if err != nil || fmt.Sprint(got) != "[a:9092 b:9092 c:9092]" {
		t.Errorf("got %v, %v", got, err)
	}
}
