package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/netcore-connect/netcore-connect/internal/plugkit"
	"github.com/netcore-connect/netcore-connect/internal/stage"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Fields of what is written.
const (
	okFieldTopic          = "topic"
	okFieldKey            = "key"
	okFieldMetadataPrefix = "metadata_prefix"
	okFieldBatching       = "batching"
)

func outputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Writes each event as a record to a Kafka topic and acknowledges it to the queue only once the brokers acknowledged it.").
		Description(`
Each message becomes one record: the message as its value, `+"`key`"+` as its key (by default the event's `+"`event_id`"+`, by which a consumer can drop the rare repeat; a key such as `+"`${! json(\"event_params.identity\") }`"+` keeps each customer's events on one partition, in order), and the metadata whose keys start with `+"`metadata_prefix`"+` as headers. Works with Kafka 0.11 and later and with Redpanda, over franz-go.

The topic is never created implicitly: an event for a topic that does not exist fails with an error naming the topic, goes back to the queue, and is delivered once the topic exists. Set `+"`create_topic: true`"+` to have the brokers create it instead.

### Delivery guarantees

The producer waits for every in-sync replica (acks = all) and is idempotent: the client's own retries never write a record twice nor out of order. A batch is acknowledged only when the brokers acknowledged every record of it; the records that failed are reported one by one, so that only those go back to the queue and are sent again. Delivery is at least once: an event in flight when the process dies is written again after the restart, with the same key.

When the brokers cannot be reached, events not yet sent fail after `+"`timeout`"+` and wait in the queue; events already sent to a broker that went away wait for it to come back rather than fail (failing them could write them twice). Brokers that do not answer at start are logged as an error but do not stop the pipeline: the input keeps receiving and the queue keeps the events.

An event larger than the brokers accept (`+"`message.max.bytes`"+`, 1 MB by default) fails every time and stays in the queue, logged, until the limit is raised.

Records of one batch keep their order per partition. Batches in flight at once (`+"`max_in_flight`"+`) may overtake each other, and an event that failed comes back from the queue after newer ones: set `+"`max_in_flight: 1`"+` for the queue's order per key while the brokers are healthy.`).
		Fields(clientFields()...).
		Fields(
			service.NewInterpolatedStringField(okFieldTopic).
				Description("The topic to write to; may differ per event.").
				Default("netcore-events"),
			service.NewInterpolatedStringField(okFieldKey).
				Description("The record key; empty writes records without a key (spread over partitions).").
				Default("${! @netcore_event_id }"),
			service.NewStringField(okFieldMetadataPrefix).
				Description("Metadata keys with this prefix are sent as record headers; empty sends none.").
				Default(stage.MetaPrefix),
			service.NewOutputMaxInFlightField(),
			service.NewBatchPolicyField(okFieldBatching),
		).
		Example("Events to a Kafka topic", "Brokers from `KAFKA_BROKERS` (comma-separated), SCRAM over TLS.", `
output:
  kafka:
    seed_brokers: [ "${KAFKA_BROKERS}" ]
    topic: netcore-events
    tls:
      enabled: true
      root_cas_file: /etc/kafka/ca.pem
    sasl:
      mechanism: SCRAM-SHA-512
      user: netcore
      password: "${KAFKA_PASSWORD}"
    batching:
      count: 500
      period: 10ms
`)
}

func init() {
	service.MustRegisterBatchOutput("kafka", outputSpec(),
		func(conf *service.ParsedConfig, res *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
			maxInFlight, err := conf.FieldMaxInFlight()
			if err != nil {
				return nil, service.BatchPolicy{}, 0, err
			}
			policy, err := conf.FieldBatchPolicy(okFieldBatching)
			if err != nil {
				return nil, service.BatchPolicy{}, 0, err
			}
			out, err := newOutputFromConfig(conf, res)
			return out, policy, maxInFlight, err
		})
}

type output struct {
	log    *service.Logger
	client clientConfig
	topic  *service.InterpolatedString
	key    *service.InterpolatedString
	prefix string

	mu sync.Mutex
	kc *kgo.Client
}

func newOutputFromConfig(conf *service.ParsedConfig, res *service.Resources) (*output, error) {
	c, err := clientConfigFromParsed(conf, res.Logger())
	if err != nil {
		return nil, err
	}
	o := &output{client: c, log: res.Logger()}
	if o.topic, err = conf.FieldInterpolatedString(okFieldTopic); err != nil {
		return nil, err
	}
	if o.key, err = conf.FieldInterpolatedString(okFieldKey); err != nil {
		return nil, err
	}
	if o.prefix, err = conf.FieldString(okFieldMetadataPrefix); err != nil {
		return nil, err
	}
	return o, nil
}

// Connect opens the client and checks that a broker answers, so that a
// wrong address or password shows in the log at once. Brokers that do not
// answer do not fail the connect: the receiver stays ready (/ready) and keeps
// storing posts, and the events wait in the queue until the brokers answer.
func (o *output) Connect(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.kc != nil {
		return nil
	}
	kc, err := kgo.NewClient(o.client.opts...)
	if err != nil {
		return fmt.Errorf("configuring the Kafka client: %w", err)
	}
	if err := kc.Ping(ctx); err != nil {
		o.log.Errorf("No Kafka broker of %s answered (check seed_brokers, tls and sasl); events wait in the queue until one does: %v", strings.Join(o.client.brokers, ","), err)
	}
	o.kc = kc
	return nil
}

// WriteBatch produces every message and waits until the brokers answered
// for each: success for all, or the failed ones named in a BatchError.
func (o *output) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	o.mu.Lock()
	kc := o.kc
	o.mu.Unlock()
	if kc == nil {
		return service.ErrNotConnected
	}
	records := make([]*kgo.Record, len(batch))
	for i := range batch {
		r, err := o.record(batch, i)
		if err != nil {
			return err
		}
		records[i] = r
	}
	// Records already sent to a broker that went away wait for it, whatever
	// ctx says (failing them could write them twice); a shutdown must not
	// wait for them: the events stay in the queue, for the next start.
	done := make(chan kgo.ProduceResults, 1)
	go func() { done <- kc.ProduceSync(ctx, records...) }()
	select {
	case results := <-done:
		return o.failures(batch, records, results)
	case <-ctx.Done():
		return fmt.Errorf("stopped before the brokers answered; the events stay in the queue: %w", ctx.Err())
	}
}

func (o *output) record(batch service.MessageBatch, i int) (*kgo.Record, error) {
	topic, err := batch.TryInterpolatedString(i, o.topic)
	if err != nil {
		return nil, fmt.Errorf("topic: %w", err)
	}
	key, err := batch.TryInterpolatedString(i, o.key)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	value, err := batch[i].AsBytes()
	if err != nil {
		return nil, err
	}
	r := &kgo.Record{Topic: topic, Value: value}
	if key != "" {
		r.Key = []byte(key)
	}
	if o.prefix != "" {
		plugkit.WalkMetaWithPrefix(batch[i], o.prefix, func(k, v string) {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
		})
	}
	return r, nil
}

// failures turns the results of a batch into nil, or a BatchError naming
// each event that was not written, so that only those are sent again.
// Results come in the order the brokers answered, not the batch's order.
func (o *output) failures(batch service.MessageBatch, records []*kgo.Record, results kgo.ProduceResults) error {
	failed := map[*kgo.Record]error{}
	var first error
	for _, r := range results {
		if r.Err != nil {
			failed[r.Record] = o.explain(r.Record.Topic, r.Err)
			if first == nil {
				first = failed[r.Record]
			}
		}
	}
	if len(failed) == 0 {
		return nil
	}
	berr := service.NewBatchError(batch, fmt.Errorf("%d of %d events not written to Kafka; the first: %w", len(failed), len(batch), first))
	for i, r := range records {
		if err, ok := failed[r]; ok {
			berr = berr.Failed(i, err)
		}
	}
	return berr
}

// explain says what to do about the errors an operator can fix.
func (o *output) explain(topic string, err error) error {
	switch {
	case errors.Is(err, kerr.UnknownTopicOrPartition) && o.client.createTopic:
		return fmt.Errorf("topic %q does not exist and the brokers did not create it (is auto.create.topics.enable off?): create it; the events wait in the queue until then: %w", topic, err)
	case errors.Is(err, kerr.UnknownTopicOrPartition):
		return fmt.Errorf("topic %q does not exist: create it, or set create_topic: true; the events wait in the queue until then: %w", topic, err)
	case errors.Is(err, kerr.MessageTooLarge):
		return fmt.Errorf("the event is larger than the brokers accept (message.max.bytes, 1 MB unless raised) or than the batch limit; it stays in the queue and fails again until the limit is raised: %w", err)
	case errors.Is(err, kgo.ErrRecordTimeout):
		return fmt.Errorf("no broker of %s acknowledged the event within %s: check that the brokers are up and reachable, and that tls and sasl match them: %w", strings.Join(o.client.brokers, ","), o.client.timeout, err)
	default:
		return fmt.Errorf("topic %q: %w", topic, err)
	}
}

func (o *output) Close(context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.kc != nil {
		o.kc.Close()
		o.kc = nil
	}
	return nil
}
