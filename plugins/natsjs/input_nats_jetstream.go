package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/stage"
)

const (
	ijFieldDurable       = "durable"
	ijFieldFilterSubject = "filter_subject"
	ijFieldAckWait       = "ack_wait"
	ijFieldMaxDeliver    = "max_deliver"
	ijFieldBackoff       = "backoff"
	ijFieldMaxAckPending = "max_ack_pending"
	ijFieldPrefetch      = "prefetch"
)

func inputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Consumes a NATS JetStream stream through a durable pull consumer, one message at a time, acknowledging each only once the output accepted it.").
		Description(`
Every instance with the same `+"`durable`"+` name shares the consumer: run as many deliverers as needed, each event goes to one of them. An event the output fails is handed back (nak) and delivered again after the next `+"`backoff`"+` step, by any instance; one whose instance dies is delivered again after `+"`ack_wait`"+`. An event that comes again within `+"`dedupe_window`"+` of its delivery (the stream stored it again) is acknowledged and dropped.

Metadata: the headers of the message (the `+"`netcore_*`"+` metadata from the `+"`nats_jetstream`"+` output), plus `+"`nats_subject`"+`, `+"`nats_sequence`"+` (stream sequence) and `+"`nats_num_delivered`"+` (this delivery's number, from 1). `+"`max_deliver`"+` stops redelivery; route the last failed delivery to dead letters in the output by checking `+"`nats_num_delivered`"+` (as `+"`config/scale-out/deliver.yaml`"+` does). The stream and the consumer are created if missing.`).
		Fields(streamFields()...).
		Fields(
			service.NewStringField(ijFieldDurable).
				Description("The durable consumer's name, shared by all instances.").
				Default("meiro-events"),
			service.NewStringField(ijFieldFilterSubject).
				Description("Only messages of this subject; empty for the whole stream.").
				Default(""),
			service.NewDurationField(ijFieldAckWait).
				Description("How long a delivered message may stay unacknowledged before JetStream delivers it again (an instance that died).").
				Default("60s"),
			service.NewIntField(ijFieldMaxDeliver).
				Description("The most deliveries of one message; -1 for no limit.").
				Default(-1),
			service.NewStringListField(ijFieldBackoff).
				Description("Waits before a failed message is delivered again, one per failure; the last repeats.").
				Default([]string{"1s", "2s", "5s", "10s", "30s"}),
			service.NewIntField(ijFieldMaxAckPending).
				Description("Messages delivered and not yet acknowledged, across all instances.").
				Default(1024),
			service.NewIntField(ijFieldPrefetch).
				Description("Messages this instance fetches ahead of the pipeline, at most: the output's `max_in_flight` (64 for `meiro_events`). A fetched message is on its `ack_wait` clock while it waits for a free request: with more fetched than the output can send at once, a slow output lets them wait past `ack_wait`, and the stream delivers them again, to another instance, as repeats.").
				Default(64),
		).
		Fields(repeatFields()...).
		Example("Deliver from the cluster", "", `
input:
  nats_jetstream:
    urls: [ "${NATS_URL}" ]
    durable: meiro-events
`)
}

func init() {
	service.MustRegisterBatchInput("nats_jetstream", inputSpec(),
		func(conf *service.ParsedConfig, res *service.Resources) (service.BatchInput, error) {
			return newInputFromConfig(conf, res)
		})
}

type jetStreamInput struct {
	conf     streamConfig
	consumer jetstream.ConsumerConfig
	backoff  []time.Duration
	prefetch int
	repeats  *repeatFilter // nil when dedupe_window is 0s
	log      *service.Logger

	mu   sync.Mutex
	nc   *nats.Conn
	js   jetstream.JetStream
	cons jetstream.Consumer // nil until created, and once lost
	iter jetstream.MessagesContext
}

func newInputFromConfig(conf *service.ParsedConfig, res *service.Resources) (*jetStreamInput, error) {
	c, err := streamConfigFromParsed(conf)
	if err != nil {
		return nil, err
	}
	in := &jetStreamInput{conf: c, log: res.Logger()}
	cc := jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy}
	if cc.Durable, err = conf.FieldString(ijFieldDurable); err != nil {
		return nil, err
	}
	if cc.FilterSubject, err = conf.FieldString(ijFieldFilterSubject); err != nil {
		return nil, err
	}
	if cc.AckWait, err = conf.FieldDuration(ijFieldAckWait); err != nil {
		return nil, err
	}
	if cc.MaxDeliver, err = conf.FieldInt(ijFieldMaxDeliver); err != nil {
		return nil, err
	}
	if cc.MaxAckPending, err = conf.FieldInt(ijFieldMaxAckPending); err != nil {
		return nil, err
	}
	if in.prefetch, err = conf.FieldInt(ijFieldPrefetch); err != nil {
		return nil, err
	}
	if in.prefetch < 1 {
		return nil, fmt.Errorf("%s is %d: set at least 1, the output's max_in_flight", ijFieldPrefetch, in.prefetch)
	}
	if in.repeats, err = newRepeatFilter(conf, res, c.stream.Name, cc.Durable); err != nil {
		return nil, err
	}
	waits, err := conf.FieldStringList(ijFieldBackoff)
	if err != nil {
		return nil, err
	}
	for _, w := range waits {
		d, err := time.ParseDuration(w)
		if err != nil {
			return nil, fmt.Errorf("backoff %q: %w", w, err)
		}
		in.backoff = append(in.backoff, d)
	}
	if len(in.backoff) == 0 {
		return nil, errors.New("backoff needs at least one wait")
	}
	in.consumer = cc
	return in, nil
}

// A pull request that the cluster loses (sent while the consumer's leader is
// being elected, as right after a start or a failover) is noticed only when
// two heartbeats are missed, and nothing is delivered to this instance until
// then. With nats.go's defaults (30 s expiry, 15 s heartbeats) that was 30 s
// of silence: an event failing twice took over 30 s to reach its dead letter
// in a loaded CI run. Short pulls and 1 s heartbeats bound it to about 2 s,
// for an idle cost of one pull request every 5 s.
const (
	pullExpiry    = 5 * time.Second
	pullHeartbeat = time.Second
)

// Connect connects and creates the consumer, or, once connected, only
// starts a new message iterator after the last one failed, and creates the
// consumer again if it was lost.
func (in *jetStreamInput) Connect(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.iter != nil {
		return nil
	}
	if in.nc == nil {
		nc, js, err := in.conf.connect(ctx, "netcore-connect deliver", in.log)
		if err != nil {
			return err
		}
		if err := in.repeats.attach(nc); err != nil {
			nc.Close()
			return err
		}
		in.nc, in.js = nc, js
	}
	if in.cons == nil {
		cons, err := in.js.CreateOrUpdateConsumer(ctx, in.conf.stream.Name, in.consumer)
		if err != nil {
			return fmt.Errorf("creating consumer %s on %s: %w", in.consumer.Durable, in.conf.stream.Name, err)
		}
		in.cons = cons
	}
	iter, err := in.cons.Messages(jetstream.PullMaxMessages(in.prefetch),
		jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return fmt.Errorf("consuming %s: %w", in.conf.stream.Name, err)
	}
	in.iter = iter
	return nil
}

func (in *jetStreamInput) ReadBatch(ctx context.Context) (service.MessageBatch, service.AckFunc, error) {
	for {
		m, err := in.next(ctx)
		if err != nil {
			return nil, nil, err
		}
		key, hasID := in.repeats.keyOf(m)
		if hasID && in.repeats.dropRepeat(m, key) {
			continue
		}
		msg, delivered := in.toMessage(m)
		return service.MessageBatch{msg}, func(_ context.Context, err error) error {
			if err == nil {
				// Delivered, whatever becomes of the ack: a repeat of it
				// is dropped from now on.
				if hasID {
					in.repeats.delivered(key)
				}
				return m.DoubleAck(context.Background())
			}
			step := min(int(delivered)-1, len(in.backoff)-1)
			return m.NakWithDelay(in.backoff[max(step, 0)])
		}, nil
	}
}

// next is the next message from the stream.
func (in *jetStreamInput) next(ctx context.Context) (jetstream.Msg, error) {
	in.mu.Lock()
	iter := in.iter
	in.mu.Unlock()
	if iter == nil {
		return nil, service.ErrNotConnected
	}
	m, err := iter.Next(jetstream.NextContext(ctx))
	for errors.Is(err, jetstream.ErrNoHeartbeat) && ctx.Err() == nil {
		// A failover can pause heartbeats; the iterator goes on, unless
		// its consumer is gone.
		if in.consumerLost(ctx) {
			err = errConsumerLost
			break
		}
		m, err = iter.Next(jetstream.NextContext(ctx))
	}
	if err == nil {
		return m, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	// Only the iterator is renewed (by Connect): the connection, and the
	// acks of messages still at the output, stay.
	in.mu.Lock()
	if in.iter == iter {
		iter.Stop()
		in.iter = nil
		if errors.Is(err, errConsumerLost) || errors.Is(err, jetstream.ErrConsumerDeleted) {
			in.cons = nil // created again by Connect
		}
	}
	in.mu.Unlock()
	return nil, fmt.Errorf("%w: %w", service.ErrNotConnected, err)
}

// toMessage is m with its headers and delivery as metadata, and its number
// of deliveries.
func (in *jetStreamInput) toMessage(m jetstream.Msg) (*service.Message, uint64) {
	msg := service.NewMessage(m.Data())
	for k, vs := range m.Headers() {
		if len(vs) > 0 {
			msg.MetaSetMut(k, vs[0])
		}
	}
	delivered := uint64(1)
	if md, err := m.Metadata(); err == nil {
		delivered = md.NumDelivered
		msg.MetaSetMut(stage.MetaNATSSequence, strconv.FormatUint(md.Sequence.Stream, 10))
	}
	msg.MetaSetMut(stage.MetaNATSSubject, m.Subject())
	msg.MetaSetMut(stage.MetaNATSNumDelivered, strconv.FormatUint(delivered, 10))
	return msg, delivered
}

// errConsumerLost is a consumer the cluster no longer has: a power cut of
// the whole cluster loses one created since its nodes' last sync, and pulls
// to it meet only silence.
var errConsumerLost = errors.New("the consumer is gone from the cluster")

// consumerLost says whether the cluster answers that the consumer does not
// exist (not merely that it cannot answer now).
func (in *jetStreamInput) consumerLost(ctx context.Context) bool {
	in.mu.Lock()
	cons := in.cons
	in.mu.Unlock()
	if cons == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err := cons.Info(ctx)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		in.log.Warnf("Consumer %s of %s is gone from the cluster: creating it again", in.consumer.Durable, in.conf.stream.Name)
		return true
	}
	return false
}

func (in *jetStreamInput) closeLocked() {
	if in.iter != nil {
		in.iter.Stop()
		in.iter = nil
	}
	if in.nc != nil {
		in.repeats.detach()
		in.nc.Close()
		in.nc, in.js, in.cons = nil, nil, nil
	}
}

func (in *jetStreamInput) Close(context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.closeLocked()
	return nil
}
