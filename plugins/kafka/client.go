package kafka

import (
	"errors"
	"fmt"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/plugkit"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Fields of the connection to the brokers.
const (
	fieldSeedBrokers  = "seed_brokers"
	fieldCreateTopic  = "create_topic"
	fieldCompression  = "compression"
	fieldTimeout      = "timeout"
	fieldTLS          = "tls"
	fieldSASL         = "sasl"
	fieldSASLMech     = "mechanism"
	fieldSASLUser     = "user"
	fieldSASLPassword = "password"
)

// SASL mechanisms, as Kafka names them.
const (
	saslNone        = "none"
	saslPlain       = "PLAIN"
	saslScramSHA256 = "SCRAM-SHA-256"
	saslScramSHA512 = "SCRAM-SHA-512"
)

var compressionCodecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

func clientFields() []*service.ConfigField {
	return []*service.ConfigField{
		service.NewStringListField(fieldSeedBrokers).
			Description("Brokers to bootstrap from, as `host:port`; an entry may hold several separated by commas, so that `KAFKA_BROKERS` fills the list. The client learns the rest of the cluster from them.").
			Example([]string{"${KAFKA_BROKERS}"}).
			Example([]string{"kafka-1:9092", "kafka-2:9092"}),
		service.NewBoolField(fieldCreateTopic).
			Description("Ask the brokers to create a topic that does not exist, with the brokers' default partitions and replicas (the brokers must allow it: `auto.create.topics.enable`). Off by default: events for a missing topic fail with an error naming it and wait in the queue until the topic is created.").
			Default(false),
		service.NewStringEnumField(fieldCompression, "none", "gzip", "snappy", "lz4", "zstd").
			Description("How record batches are compressed. A batch is sent compressed only when that makes it smaller. Every consumer of the topic must be able to decode the codec.").
			Default("snappy"),
		service.NewDurationField(fieldTimeout).
			Description("How long an event may wait for the brokers before it fails and goes back to the queue (which tries it again later). An event already sent to a broker is never failed before the broker answers, so that a retry cannot write it twice.").
			Default("10s"),
		service.NewTLSToggledField(fieldTLS).
			Description("TLS to the brokers; `root_cas_file` names the PEM file of the CA to trust."),
		service.NewObjectField(fieldSASL,
			service.NewStringEnumField(fieldSASLMech, saslNone, saslPlain, saslScramSHA256, saslScramSHA512).
				Description("The SASL mechanism; `none` authenticates without SASL. PLAIN sends the password as it is: use it only with TLS.").
				Default(saslNone),
			service.NewStringField(fieldSASLUser).
				Description("The SASL user.").
				Default(""),
			service.NewStringField(fieldSASLPassword).
				Description("The SASL password.").
				Default("").
				Secret(),
		).Description("SASL authentication to the brokers."),
	}
}

// clientConfig is what the output needs to open a franz-go client.
type clientConfig struct {
	brokers     []string
	timeout     time.Duration
	createTopic bool
	opts        []kgo.Opt
}

func clientConfigFromParsed(conf *service.ParsedConfig, log *service.Logger) (c clientConfig, err error) {
	if c.brokers, err = seedBrokers(conf); err != nil {
		return c, err
	}
	if c.timeout, err = conf.FieldDuration(fieldTimeout); err != nil {
		return c, err
	}
	c.opts = []kgo.Opt{
		kgo.SeedBrokers(c.brokers...),
		kgo.ClientID("netcore-connect"),
		kgo.WithLogger(kgoLogger{log}),
		// Every in-sync replica has the event before it leaves the queue;
		// idempotence (on by default, and never disabled here) keeps the
		// client's own retries from writing it twice or out of order.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(c.timeout),
	}
	codec, err := conf.FieldString(fieldCompression)
	if err != nil {
		return c, err
	}
	c.opts = append(c.opts, kgo.ProducerBatchCompression(compressionCodecs[codec]))
	if c.createTopic, err = conf.FieldBool(fieldCreateTopic); err != nil {
		return c, err
	}
	if c.createTopic {
		c.opts = append(c.opts, kgo.AllowAutoTopicCreation())
	}
	tlsConf, tlsOn, err := conf.FieldTLSToggled(fieldTLS)
	if err != nil {
		return c, err
	}
	if tlsOn {
		c.opts = append(c.opts, kgo.DialTLSConfig(tlsConf))
	}
	mech, err := saslMechanism(conf.Namespace(fieldSASL))
	if err != nil {
		return c, err
	}
	if mech != nil {
		c.opts = append(c.opts, kgo.SASL(mech))
	}
	return c, nil
}

func seedBrokers(conf *service.ParsedConfig) ([]string, error) {
	entries, err := conf.FieldStringList(fieldSeedBrokers)
	if err != nil {
		return nil, err
	}
	brokers := plugkit.SplitList(entries)
	if len(brokers) == 0 {
		return nil, errors.New("seed_brokers is empty: name at least one broker as host:port (KAFKA_BROKERS in the recipe)")
	}
	return brokers, nil
}

// saslMechanism returns nil when SASL is off.
func saslMechanism(conf *service.ParsedConfig) (sasl.Mechanism, error) {
	mech, err := conf.FieldString(fieldSASLMech)
	if err != nil || mech == saslNone {
		return nil, err
	}
	user, err := conf.FieldString(fieldSASLUser)
	if err != nil {
		return nil, err
	}
	pass, err := conf.FieldString(fieldSASLPassword)
	if err != nil {
		return nil, err
	}
	if user == "" {
		return nil, fmt.Errorf("sasl.mechanism is %s but sasl.user is empty: set the user and password", mech)
	}
	switch mech {
	case saslPlain:
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case saslScramSHA256:
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	default:
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	}
}

// kgoLogger passes franz-go's warnings and errors (a broker unreachable, a
// failed authentication) to Benthos's log; its debug chatter is dropped.
type kgoLogger struct{ log *service.Logger }

func (kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	log := l.log.With(keyvals...)
	if level == kgo.LogLevelError {
		log.Error("kafka client: " + msg)
	} else if level == kgo.LogLevelWarn {
		log.Warn("kafka client: " + msg)
	}
}
