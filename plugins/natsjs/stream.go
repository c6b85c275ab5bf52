// Package natsjs holds the nats_jetstream input and output: netcore-connect
// on NATS JetStream when one machine is not enough, so that no single disk
// holds the only copy of an event.
package natsjs

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/plugkit"
)

// Fields shared by the input and the output: where the servers are and the
// stream the events live in, created when it is missing.
const (
	fieldURLs            = "urls"
	fieldStream          = "stream"
	fieldSubjects        = "subjects"
	fieldReplicas        = "replicas"
	fieldMaxBytes        = "max_bytes"
	fieldDuplicateWindow = "duplicate_window"
	fieldCredentialsFile = "credentials_file"
	fieldRootCAsFile     = "root_cas_file"
)

func streamFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringListField(fieldURLs).
			Description("NATS server URLs; an entry may hold several separated by commas, so that `NATS_URL` fills the list. The client fails over between them.").
			Example([]string{"nats://127.0.0.1:4222"}).
			Example([]string{"${NATS_URL}"}),
		service.NewStringField(fieldStream).
			Description("The JetStream stream holding the events.").
			Default("NETCORE_EVENTS"),
		service.NewStringListField(fieldSubjects).
			Description("The stream's subjects, used when the stream is created.").
			Default([]string{"netcore.events.>"}),
		service.NewIntField(fieldReplicas).
			Description("Copies of each event in the cluster, when the stream is created: 3 on a 3-node cluster, so that losing a node (or its disk) loses nothing.").
			Default(1),
		service.NewIntField(fieldMaxBytes).
			Description("The stream's size limit, when it is created. A full stream refuses new events (discard new): the receiver answers 503 and Netcore posts again, rather than old events being dropped.").
			Default(1 << 30),
		service.NewDurationField(fieldDuplicateWindow).
			Description("How long the stream remembers message ids (`Nats-Msg-Id`, the event id), when it is created: an event published again within it is stored once.").
			Default("10m"),
		service.NewStringField(fieldCredentialsFile).
			Description("A NATS credentials file (JWT and NKey).").
			Default(""),
		service.NewStringField(fieldRootCAsFile).
			Description("PEM file of the CAs to trust for TLS to the servers (`tls://` URLs).").
			Default(""),
	}
}

// streamConfig is the parsed connection and stream settings.
type streamConfig struct {
	urls            string
	stream          jetstream.StreamConfig
	credentialsFile string
	rootCAsFile     string
	// allLostAndBack, when set, is called once the connection is back
	// after it lost every server (outage.go).
	allLostAndBack func()
	// connectionLost, when set, is called when the connection is lost
	// and at each failed attempt to get it back (outage.go).
	connectionLost func()
}

func streamConfigFromParsed(conf *service.ParsedConfig) (c streamConfig, err error) {
	entries, err := conf.FieldStringList(fieldURLs)
	if err != nil {
		return c, err
	}
	urls := plugkit.SplitList(entries)
	if len(urls) == 0 {
		return c, errors.New("urls is empty: name at least one NATS server")
	}
	c.urls = strings.Join(urls, ",")
	if c.stream.Name, err = conf.FieldString(fieldStream); err != nil {
		return c, err
	}
	if c.stream.Subjects, err = conf.FieldStringList(fieldSubjects); err != nil {
		return c, err
	}
	if c.stream.Replicas, err = conf.FieldInt(fieldReplicas); err != nil {
		return c, err
	}
	maxBytes, err := conf.FieldInt(fieldMaxBytes)
	if err != nil {
		return c, err
	}
	c.stream.MaxBytes = int64(maxBytes)
	if c.stream.Duplicates, err = conf.FieldDuration(fieldDuplicateWindow); err != nil {
		return c, err
	}
	c.stream.Storage = jetstream.FileStorage
	c.stream.Discard = jetstream.DiscardNew
	// Work-queue retention deletes each event once the (single, shared)
	// consumer acknowledged it, so max_bytes bounds what waits, not what
	// ever passed through.
	c.stream.Retention = jetstream.WorkQueuePolicy
	if c.credentialsFile, err = conf.FieldString(fieldCredentialsFile); err != nil {
		return c, err
	}
	c.rootCAsFile, err = conf.FieldString(fieldRootCAsFile)
	return c, err
}

// connect opens a connection that reconnects for ever, and makes sure the
// stream exists.
func (c streamConfig) connect(ctx context.Context, name string, log *service.Logger) (*nats.Conn, jetstream.JetStream, error) {
	var outage serverOutage
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		// A server cut off by the network goes silent rather than closing
		// the connection; nats.go notices only when pings go unanswered,
		// every 2 minutes by default, and an ingest instance on it answered
		// 503 for the whole cut. Pinging every 5 s moves it to a healthy
		// node within about 15 s.
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			outage.disconnected()
			if c.connectionLost != nil {
				c.connectionLost()
			}
			if err != nil {
				log.Warnf("NATS disconnected: %v", err)
			}
		}),
		nats.ReconnectErrHandler(func(*nats.Conn, error) {
			outage.attemptFailed()
			if c.connectionLost != nil {
				c.connectionLost()
			}
		}),
		nats.ErrorHandler(asyncErrors(log)),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			if !outage.everyServerLost(len(nc.Servers())) {
				log.Infof("NATS reconnected to %s", nc.ConnectedUrlRedacted())
				return
			}
			log.Infof("NATS reconnected to %s after losing every server", nc.ConnectedUrlRedacted())
			if c.allLostAndBack != nil {
				c.allLostAndBack()
			}
		}),
	}
	if c.credentialsFile != "" {
		opts = append(opts, nats.UserCredentials(c.credentialsFile))
	}
	if c.rootCAsFile != "" {
		opts = append(opts, nats.RootCAs(c.rootCAsFile))
	}
	nc, err := nats.Connect(c.urls, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to NATS: %w", err)
	}
	// A publish whose ack never comes (a lost message in a leader change)
	// fails after this instead of holding its post for ever.
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(10*time.Second),
		jetstream.WithPublishAsyncMaxPending(maxPendingAcks))
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("opening JetStream: %w", err)
	}
	stream, err := js.Stream(ctx, c.stream.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		if _, err = js.CreateStream(ctx, c.stream); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			nc.Close()
			return nil, nil, fmt.Errorf("creating stream %s: %w", c.stream.Name, err)
		}
		log.Infof("Created JetStream stream %s (subjects %v, replicas %d)", c.stream.Name, c.stream.Subjects, c.stream.Replicas)
	} else if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("looking up stream %s: %w", c.stream.Name, err)
	} else if r := stream.CachedInfo().Config.Retention; r != jetstream.WorkQueuePolicy {
		log.Warnf("Stream %s keeps events by %v, not as a work queue: delivered events are not removed and it will fill up", c.stream.Name, r)
	}
	return nc, js, nil
}

// maxPendingAcks is how many published events may wait for their acks at
// once (nats.go's default, set so that the output's docs stay true): past
// it a publish waits for room, and fails after 200 ms.
const maxPendingAcks = 4000

// maxErrorKinds bounds the kinds of asynchronous errors remembered as
// logged: a handful is all a connection meets.
const maxErrorKinds = 32

// asyncErrors logs the errors nats.go reports outside any call (a subject
// the server refuses this user, a subscriber too slow) once per kind: they
// come again with every message.
func asyncErrors(log *service.Logger) nats.ErrHandler {
	var mu sync.Mutex
	logged := map[string]bool{}
	return func(_ *nats.Conn, sub *nats.Subscription, err error) {
		if err == nil {
			return
		}
		kind := err.Error()
		if sub != nil {
			kind = "on " + sub.Subject + ": " + kind
		}
		mu.Lock()
		first := !logged[kind] && len(logged) < maxErrorKinds
		if first {
			logged[kind] = true
		}
		mu.Unlock()
		if first {
			log.Errorf("NATS %s%s (logged once)", kind, asyncErrorHint(sub, err))
		}
	}
}

// asyncErrorHint says what an asynchronous error on the subjects the
// deliverers share ids on costs, and what to do.
func asyncErrorHint(sub *nats.Subscription, err error) string {
	onIDs := strings.Contains(err.Error(), deliveredSubjectPrefix) || (sub != nil && strings.HasPrefix(sub.Subject, deliveredSubjectPrefix))
	switch {
	case !onIDs:
		return ""
	case errors.Is(err, nats.ErrSlowConsumer):
		return ": ids other deliverers shared were dropped, so repeats of their events may be delivered again"
	default:
		return ": the deliverers cannot share the ids they delivered, so repeats may be delivered again; " + allowSharing
	}
}
