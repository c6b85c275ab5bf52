package natsjs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/claim"
	"github.com/netcore-connect/netcore-connect/internal/plugkit"
	"github.com/netcore-connect/netcore-connect/internal/stage"
)

const (
	ojFieldSubject        = "subject"
	ojFieldMsgID          = "msg_id"
	ojFieldMetadataPrefix = "metadata_prefix"
	ojFieldMaxInFlight    = "max_in_flight"
	ojFieldBatching       = "batching"
)

func outputSpec() *service.ConfigSpec {
	return service.NewConfigSpec().
		Beta().
		Categories("Services").
		Summary("Publishes each message to a NATS JetStream stream and acknowledges it upstream only once the stream has stored it.").
		Description(`
Behind `+"`netcore_webhook`"+` this makes the 200 to Netcore mean "stored in the cluster": with a stream of 3 replicas, on a majority of 3 servers. A publish the stream refuses (full, no quorum, no server) fails the post, which is answered 503, and Netcore posts it again.

Each message is published with `+"`Nats-Msg-Id`"+` set to `+"`msg_id`"+` (the event id), so that the stream stores an event once within its duplicate window even when a post is sent twice or a publish is retried. Metadata whose keys start with `+"`metadata_prefix`"+` travel as headers and come back as metadata in the `+"`nats_jetstream`"+` input. The stream is created if it is missing.`).
		Fields(streamFields()...).
		Fields(
			service.NewInterpolatedStringField(ojFieldSubject).
				Description("The subject to publish to; it must fall within the stream's subjects.").
				Default("netcore.events.received"),
			service.NewInterpolatedStringField(ojFieldMsgID).
				Description("The message id JetStream removes repeats by; empty publishes without one.").
				Default("${! @netcore_event_id }"),
			service.NewStringField(ojFieldMetadataPrefix).
				Description("Metadata keys with this prefix are sent as headers; empty sends none.").
				Default(stage.MetaPrefix),
			service.NewIntField(ojFieldMaxInFlight).
				Description("Batches (without `batching`, events) published in parallel.").
				Default(64),
			service.NewBatchPolicyField(ojFieldBatching).
				Description(fmt.Sprintf("Events published together. The default is no batching: each event is published alone, a write and a wait for its ack each. "+
					"A batch's events are still separate messages, each with its own `Nats-Msg-Id` and each acknowledged by JetStream on its own; they are published without waiting for one another (nats.go buffers the writes, and may split or join them) and their acks are awaited together. "+
					"An event the stream did not acknowledge is reported failed alone: the input (in the scale-out config, the journal) tries that event again, not the batch. "+
					"`max_in_flight` × `count` must not exceed %d, the acks nats.go lets wait at once (PublishAsyncMaxPending): past it a publish waits for room and fails after 200 ms. "+
					"`processors` are refused: one that merged a batch would publish its events under the first one's `Nats-Msg-Id`.", maxPendingAcks)),
		).
		Fields(syncCheckFields()...).
		Example("Ingest into a 3-node cluster", "", `
output:
  nats_jetstream:
    urls: [ "${NATS_URL}" ]
    replicas: 3
    # Up to 64 events a publish, one batch out at a time (as in
    # config/scale-out/ingest.yaml).
    max_in_flight: 1
    batching:
      count: 64
      period: 2ms
`)
}

func init() {
	service.MustRegisterBatchOutput("nats_jetstream", outputSpec(), newBatchOutput)
}

// newBatchOutput is the output with its batch policy and max_in_flight.
func newBatchOutput(conf *service.ParsedConfig, res *service.Resources) (service.BatchOutput, service.BatchPolicy, int, error) {
	maxInFlight, err := conf.FieldInt(ojFieldMaxInFlight)
	if err != nil {
		return nil, service.BatchPolicy{}, 0, err
	}
	policy, err := conf.FieldBatchPolicy(ojFieldBatching)
	if err != nil {
		return nil, service.BatchPolicy{}, 0, fmt.Errorf("batching: %w", err)
	}
	// A batch processor that merges events (archive) would publish them as
	// one message under the first event's Nats-Msg-Id, and the stream would
	// drop the later events as repeats of it: acknowledged, never stored.
	if conf.Contains(ojFieldBatching, "processors") {
		procs, err := conf.FieldAnyList(ojFieldBatching, "processors")
		if err != nil {
			return nil, service.BatchPolicy{}, 0, fmt.Errorf("batching: %w", err)
		}
		if len(procs) > 0 {
			return nil, service.BatchPolicy{}, 0, errors.New("batching.processors is not supported: each event must go out as a message of its own with its own Nats-Msg-Id; remove the processors (processing of each event belongs in the pipeline)")
		}
	}
	if policy.Count > 0 && maxInFlight*policy.Count > maxPendingAcks {
		res.Logger().Warnf("max_in_flight %d × batching.count %d exceeds the %d acks that may wait at once: under load publishes will fail after 200 ms waiting for room, and be tried again; lower either", maxInFlight, policy.Count, maxPendingAcks)
	}
	out, err := newOutputFromConfig(conf, res)
	return out, policy, maxInFlight, err
}

type jetStreamOutput struct {
	conf    streamConfig
	subject *service.InterpolatedString
	msgID   *service.InterpolatedString
	prefix  string
	log     *service.Logger

	mu sync.Mutex
	nc *nats.Conn
	js jetstream.JetStream
}

func newOutputFromConfig(conf *service.ParsedConfig, res *service.Resources) (*jetStreamOutput, error) {
	c, err := streamConfigFromParsed(conf)
	if err != nil {
		return nil, err
	}
	c.allLostAndBack, c.connectionLost = republishJournals, pauseJournals
	o := &jetStreamOutput{conf: c, log: res.Logger()}
	if o.subject, err = conf.FieldInterpolatedString(ojFieldSubject); err != nil {
		return nil, err
	}
	if o.msgID, err = conf.FieldInterpolatedString(ojFieldMsgID); err != nil {
		return nil, err
	}
	if o.prefix, err = conf.FieldString(ojFieldMetadataPrefix); err != nil {
		return nil, err
	}
	sync, err := syncCheckFromParsed(conf, c.stream.Duplicates)
	if err != nil {
		return nil, err
	}
	// At start, so that a journal that would delete events before the
	// cluster syncs them never runs.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := sync.check(ctx, o.log); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *jetStreamOutput) Connect(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.nc != nil {
		return nil
	}
	nc, js, err := o.conf.connect(ctx, "netcore-connect ingest", o.log)
	if err != nil {
		return err
	}
	o.nc, o.js = nc, js
	return nil
}

// WriteBatch publishes every message and waits for the stream's acks. It
// reports each message the stream did not acknowledge (a batch error), so
// that only those are tried again: the others are stored, and one event
// the stream always refuses must not fail its batch-mates with it.
func (o *jetStreamOutput) WriteBatch(ctx context.Context, batch service.MessageBatch) error {
	o.mu.Lock()
	js := o.js
	o.mu.Unlock()
	if js == nil {
		return service.ErrNotConnected
	}
	// Publish none of a batch holding a post whose input already answered
	// that it was not stored (internal/claim).
	if !claim.TakeAll(claim.Of(batch)) {
		return claim.ErrAbandoned
	}
	errs := make([]error, len(batch))
	acks := make([]jetstream.PubAckFuture, len(batch))
	for i, msg := range batch {
		m, err := o.natsMsg(batch, i, msg)
		if err != nil {
			errs[i] = err
			continue
		}
		if acks[i], err = js.PublishMsgAsync(m); err != nil {
			errs[i] = fmt.Errorf("publishing to %s: %w", m.Subject, err)
			// Too big for the server is this event's own fault; any other
			// refusal (connection closed, too many acks pending) would
			// meet the rest of the batch too.
			if errors.Is(err, nats.ErrMaxPayload) {
				continue
			}
			for j := i + 1; j < len(batch); j++ {
				errs[j] = fmt.Errorf("not published, after: %w", err)
			}
			break
		}
	}
	for i, f := range acks {
		if f == nil {
			continue
		}
		select {
		case <-f.Ok():
		case err := <-f.Err():
			errs[i] = fmt.Errorf("stream %s did not store the event: %w", o.conf.stream.Name, err)
		case <-ctx.Done():
			errs[i] = fmt.Errorf("waiting for stream %s: %w", o.conf.stream.Name, ctx.Err())
		}
	}
	return o.batchResult(batch, errs)
}

// batchResult is nil when every message of the batch was stored, else a
// batch error failing exactly the messages with an error: each input is
// told its own event's error, the headline goes where a batch is one.
func (o *jetStreamOutput) batchResult(batch service.MessageBatch, errs []error) error {
	var failed int
	var first error
	for _, err := range errs {
		if err != nil {
			failed++
			first = cmp.Or(first, err)
		}
	}
	if failed == 0 {
		return nil
	}
	berr := service.NewBatchError(batch, fmt.Errorf("%d of %d events not stored (see the stream's limits, its size and message size, and the servers' logs); the first: %w", failed, len(batch), first))
	for i, err := range errs {
		if err != nil {
			berr.Failed(i, err)
		}
	}
	return berr
}

func (o *jetStreamOutput) natsMsg(batch service.MessageBatch, i int, msg *service.Message) (*nats.Msg, error) {
	subject, err := batch.TryInterpolatedString(i, o.subject)
	if err != nil {
		return nil, fmt.Errorf("subject: %w", err)
	}
	body, err := msg.AsBytes()
	if err != nil {
		return nil, err
	}
	m := nats.NewMsg(subject)
	m.Data = body
	if id, err := batch.TryInterpolatedString(i, o.msgID); err != nil {
		return nil, fmt.Errorf("msg_id: %w", err)
	} else if id != "" {
		m.Header.Set(jetstream.MsgIDHeader, id)
	}
	if o.prefix != "" {
		plugkit.WalkMetaWithPrefix(msg, o.prefix, m.Header.Set)
	}
	return m, nil
}

func (o *jetStreamOutput) Close(context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.nc != nil {
		o.nc.Close()
		o.nc, o.js = nil, nil
	}
	return nil
}
