package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/netcore-connect/netcore-connect/plugins/netcore"
)

// setting is an environment variable of the shipped pipelines, with what it
// allows. Each is checked before a config is read, so that a bad value stops
// the start with an error naming the variable, instead of starting and
// failing at delivery (MEIRO_EVENTS_URL='not a url'), sending unbounded
// arrays (MEIRO_BATCH_SIZE=0) or reporting a raw YAML error
// (MEIRO_BATCH_SIZE=abc). An unset or empty variable is not checked: the
// config's default applies, or Benthos names it as required.
type setting struct {
	name    string
	allowed string // what the error says is allowed
	check   func(string) error
}

// credentialSettings may hold a password in a URL or DSN: when one is
// wrong, it is shown with the password hidden.
var credentialSettings = map[string]bool{"POSTGRES_DSN": true, "MEIRO_EVENTS_URL": true, "NATS_URL": true}

// secretSettings are secrets whole: when one is wrong, its value is not
// shown at all.
var secretSettings = map[string]bool{"NETCORE_WEBHOOK_TOKEN": true}

// settings are every variable of the README's Environment table, in its
// order (a test keeps the two in step).
var settings = []setting{
	{"NETCORE_ADDRESS", "host:port, e.g. 0.0.0.0:8080", hostPort},
	{"NETCORE_PATH", "a path starting with /", func(v string) error { return need(strings.HasPrefix(v, "/")) }},
	{"NETCORE_ALLOWED_IPS", "comma-separated IP addresses and CIDR prefixes, v4 or v6", netcore.CheckAddressList},
	{"NETCORE_TRUSTED_PROXIES", "comma-separated IP addresses and CIDR prefixes, v4 or v6", netcore.CheckAddressList},
	{"NETCORE_WEBHOOK_TOKEN", "one token, or two separated by a comma, each at least 16 characters of letters, digits, '-', '.', '_' and '~'", netcore.CheckTokens},
	{"NETCORE_WEBHOOK_TOKEN_HEADER", "an HTTP header name: letters, digits and -", netcore.CheckHeaderName},
	{"NETCORE_UNKNOWN_SOURCES", "refuse or quarantine", oneOf("refuse", "quarantine")},
	{"NETCORE_QUARANTINE_MAX_BYTES", "a whole number of bytes, at least 1048576 (1 MiB)", intRange(1<<20, 1<<62)},
	{"NETCORE_TIMEZONE", "an IANA time zone such as Asia/Kolkata or UTC", func(v string) error { _, err := time.LoadLocation(v); return err }},
	{"NETCORE_DATA_DIR", "a directory path", func(string) error { return nil }},
	{"MEIRO_EVENTS_URL", "an http:// or https:// URL with a host", httpURL},
	{"MEIRO_BATCH_SIZE", "a whole number from 1 to 10000", intRange(1, 10_000)},
	{"MEIRO_TIMEOUT", "a duration from 1s to 45s, e.g. 10s or 30s", durationRange(time.Second, maxMeiroTimeout)},
	{"NETCORE_INSPECT_ADDRESS", "host:port, e.g. 127.0.0.1:8081", hostPort},
	{"NETCORE_INSPECT_MASK", "comma-separated field names or dotted paths, e.g. identity,att_params,custom_params.user_email", netcore.CheckMaskFields},
	{"NETCORE_CONTRACT_DIR", "a directory of JSON Schemas, one <panel>.json each, as netcore-connect catalog export writes them", func(string) error { return nil }},
	{"NETCORE_CONTRACT", "deliver or enforce", oneOf("deliver", "enforce")},
	{"NETCORE_ADMIN_ADDRESS", "host:port, e.g. 127.0.0.1:4195", hostPort},
	{"NATS_URL", "comma-separated nats://, tls://, ws:// or wss:// URLs with a host", natsURLs},
	{"NETCORE_STREAM", "a JetStream stream name: letters, digits, - and _", matches(`^[A-Za-z0-9_-]+$`)},
	{"NETCORE_STREAM_REPLICAS", "a whole number from 1 to 5", intRange(1, 5)},
	{"NETCORE_STREAM_MAX_BYTES", "a whole number of bytes, at least 1048576 (1 MiB)", intRange(1<<20, 1<<62)},
	{"NETCORE_MAX_DELIVER", "a whole number from 1 up, the deliveries before an event becomes a dead letter", intRange(1, 1<<31-1)},
	// Under the stream's duplicate window (10m in ingest.yaml), so that what
	// the journal publishes again is stored once.
	{"NETCORE_JOURNAL_RETAIN", "a duration from 0s to 9m, more than the NATS servers' sync_interval, e.g. 2m30s", durationRange(0, 9*time.Minute)},
	{"NETCORE_JOURNAL_MAX_BYTES", "a whole number of bytes, at least 1048576 (1 MiB)", intRange(1<<20, 1<<62)},
	// Batches of 64 events: past 62 at once, nats.go's 4,000 pending
	// asynchronous publishes stall the output.
	{"NETCORE_PUBLISH_IN_FLIGHT", "a whole number from 1 to 62, the batches of 64 events the journal publishes at once", intRange(1, 62)},
	{"NATS_MONITOR_URL", "comma-separated http:// or https:// URLs of the NATS servers' monitoring ports", func(v string) error {
		for item := range strings.SplitSeq(v, ",") {
			if err := httpURL(strings.TrimSpace(item)); err != nil {
				return err
			}
		}
		return nil
	}},
	{"KAFKA_BROKERS", "comma-separated host:port of Kafka brokers", hostPorts},
	{"KAFKA_TOPIC", "a Kafka topic name: letters, digits, '.', '_' and '-', at most 249", matches(`^[A-Za-z0-9._-]{1,249}$`)},
	{"KAFKA_TLS", "true or false", oneOf("true", "false")},
	{"KAFKA_CA_FILE", "a PEM file of certificate authorities", func(string) error { return nil }},
	{"KAFKA_SASL_MECHANISM", "none, PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", oneOf("none", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")},
	{"KAFKA_USER", "the SASL user name", func(string) error { return nil }},
	{"KAFKA_PASSWORD", "the SASL password", func(string) error { return nil }},
	{"POSTGRES_DSN", "a PostgreSQL URL (postgres://user@host:5432/db?sslmode=verify-full) or key=value DSN", postgresDSN},
	{"POSTGRES_TABLE", "a table name of at most 63 bytes (any characters: it is quoted)", matches(`^[^\x00]{1,63}$`)},
	{"POSTGRES_CREATE_TABLE", "true or false", oneOf("true", "false")},
	{"POSTGRES_BATCH_SIZE", "a whole number of rows from 1 to 10000", intRange(1, 10_000)},
	{"NETCORE_ARCHIVE_DAYS", "a whole number of days from 0 (0 keeps every hour)", intRange(0, 100_000)},
	{"NETCORE_ARCHIVE_GZIP", "true or false", oneOf("true", "false")},
	{"REPLAY_FROM", "an RFC 3339 time on a whole hour, e.g. 2026-11-28T07:00:00Z", rfc3339},
	{"REPLAY_TO", "an RFC 3339 time on a whole hour, e.g. 2026-11-28T13:00:00Z", rfc3339},
	{"NETCORE_LOG_FORMAT", "logfmt or json", oneOf("logfmt", "json")},
	{"NETCORE_LOG_LEVEL", "OFF, NONE, FATAL, ERROR, WARN, INFO, DEBUG, TRACE or ALL (any case)", oneOfFold("OFF", "NONE", "FATAL", "ERROR", "WARN", "INFO", "DEBUG", "TRACE", "ALL")},
	{"GOGC", "a whole number from 1 up, or off", func(v string) error {
		if v == "off" {
			return nil
		}
		return intRange(1, 1<<31-1)(v)
	}},
	{"GOMEMLIMIT", "a size such as 144MiB, 1GiB or 500000000, or off", matches(`^(off|[0-9]+(B|KiB|MiB|GiB|TiB)?)$`)},
}

// maxMeiroTimeout bounds MEIRO_TIMEOUT by the scale-out deliverer's
// ack_wait (config/scale-out/deliver.yaml, 60 s), after which NATS gives an
// unacknowledged event to another deliverer. Its clock starts when NATS
// delivers the event, before the request: the event first waits for one of
// max_in_flight requests, then (retries 0) its own request takes at most
// the timeout. 45 s leaves 15 s for that wait. ack_wait is not raised
// instead: it is also how long the events of a deliverer that died, or
// whose pull was renewed in a failover, wait for another.
const maxMeiroTimeout = 45 * time.Second

// checkEnvironment checks every set variable and reports all bad ones at
// once, each with its value and what is allowed.
func checkEnvironment(lookup func(string) (string, bool)) error {
	var errs []error
	for _, s := range settings {
		v, ok := lookup(s.name)
		if !ok || v == "" {
			continue
		}
		if err := s.check(v); err != nil {
			if shown := redacted(v); credentialSettings[s.name] && shown != v {
				v, err = shown, errors.New("shown with its password hidden")
			}
			if secretSettings[s.name] {
				v = "(not shown)"
			}
			errs = append(errs, fmt.Errorf("%s=%q is not valid (%v): it takes %s", s.name, v, err, s.allowed))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("netcore-connect will not start with these environment variables; correct them and start again:\n%w", errors.Join(errs...))
}

// redacted is v, a URL or a comma-separated list of them, with any password
// in it hidden; a value that may hold one in another form (a key=value DSN
// with password=) is hidden whole.
func redacted(v string) string {
	parts := strings.Split(v, ",")
	for i, part := range parts {
		u, err := url.Parse(strings.TrimSpace(part))
		switch {
		case err == nil && u.User != nil:
			parts[i] = u.Redacted()
		case err != nil || strings.Contains(strings.ToLower(part), "password"):
			return "(hidden)"
		}
	}
	return strings.Join(parts, ",")
}

// lookupEnv reads the process's environment, after Benthos has applied any
// -e .env files to it.
func lookupEnv(name string) (string, bool) { return os.LookupEnv(name) }

var errNotAllowed = errors.New("not one of the allowed values")

func need(ok bool) error {
	if !ok {
		return errNotAllowed
	}
	return nil
}

func hostPort(v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	return nil
}

func httpURL(v string) error {
	u, err := url.Parse(v)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

func hostPorts(v string) error {
	for item := range strings.SplitSeq(v, ",") {
		if err := hostPort(strings.TrimSpace(item)); err != nil {
			return fmt.Errorf("%q: %w", item, err)
		}
	}
	return nil
}

// postgresDSN is checked the way the postgres output reads it.
func postgresDSN(v string) error {
	_, err := pgxpool.ParseConfig(v)
	return err
}

func rfc3339(v string) error {
	_, err := time.Parse(time.RFC3339, v)
	return err
}

func natsURLs(v string) error {
	for item := range strings.SplitSeq(v, ",") {
		u, err := url.Parse(strings.TrimSpace(item))
		if err != nil {
			return err
		}
		switch {
		case u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss":
			return fmt.Errorf("%q has scheme %q", item, u.Scheme)
		case u.Host == "":
			return fmt.Errorf("%q has no host", item)
		}
	}
	return nil
}

func intRange(lowest, highest int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errors.New("not a whole number")
		}
		if n < lowest || n > highest {
			return fmt.Errorf("%d is out of range", n)
		}
		return nil
	}
}

func durationRange(shortest, longest time.Duration) func(string) error {
	return func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("not a duration with its unit")
		}
		if d < shortest || d > longest {
			return fmt.Errorf("%s is out of range", d)
		}
		return nil
	}
}

func oneOf(allowed ...string) func(string) error {
	return func(v string) error {
		for _, a := range allowed {
			if v == a {
				return nil
			}
		}
		return errNotAllowed
	}
}

func oneOfFold(allowed ...string) func(string) error {
	return func(v string) error { return oneOf(allowed...)(strings.ToUpper(v)) }
}

func matches(pattern string) func(string) error {
	re := regexp.MustCompile(pattern)
	return func(v string) error { return need(re.MatchString(v)) }
}
