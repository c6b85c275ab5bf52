package netcore

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/inspector"
	"github.com/netcore-connect/netcore-connect/internal/quarantine"
)

// webhookConfig is the parsed configuration of a netcore_webhook input.
type webhookConfig struct {
	address              string
	path                 string
	allowed              addressSet
	trustedProxies       addressSet
	tokens               *webhookTokens // nil: no token needed
	maxBodyBytes         int64
	readHeaderTimeout    time.Duration
	readTimeout          time.Duration
	writeTimeout         time.Duration
	idleTimeout          time.Duration
	ackTimeout           time.Duration
	retryAfter           time.Duration
	rateLimit            string
	tlsEnabled           bool
	tlsCertFile          string
	tlsKeyFile           string
	rejectedFile         string
	rejectedMaxBytes     int64
	logPosts             bool
	maxEventsPerPost     int
	maxInFlight          int
	maxBodyBytesInFlight int64
	inspectAddress       string
	inspectPosts         int
	inspectMask          inspector.Mask // nil: masking off
	unknownSources       string
	quarantineDir        string
	quarantineLimits     quarantine.Limits
	catalogDir           string
}

func webhookConfigFromParsed(conf *service.ParsedConfig) (c webhookConfig, err error) {
	for _, parse := range []func(*service.ParsedConfig, *webhookConfig) error{
		parseAddressing, parseLimits, parseTimeouts, parseTLS, parseKeeping, parseQuarantine,
	} {
		if err := parse(conf, &c); err != nil {
			return c, err
		}
	}
	c.catalogDir, err = conf.FieldString(wiFieldCatalogDir)
	return c, err
}

// parseAddressing reads where the receiver listens and who may post.
func parseAddressing(conf *service.ParsedConfig, c *webhookConfig) (err error) {
	if c.address, err = conf.FieldString(wiFieldAddress); err != nil {
		return err
	}
	if c.path, err = conf.FieldString(wiFieldPath); err != nil {
		return err
	}
	if !strings.HasPrefix(c.path, "/") {
		return fmt.Errorf("%s %q must start with /", wiFieldPath, c.path)
	}
	// A slice, not a map, so that of two bad fields the same one is
	// reported every time.
	for _, f := range []struct {
		field string
		set   *addressSet
	}{{wiFieldAllowedIPs, &c.allowed}, {wiFieldTrustedProxies, &c.trustedProxies}} {
		entries, err := conf.FieldStringList(f.field)
		if err != nil {
			return err
		}
		if *f.set, err = parseAddressSet(entries); err != nil {
			return fmt.Errorf("%s: %w", f.field, err)
		}
	}
	if len(c.allowed) == 0 {
		return fmt.Errorf("%s is empty, so nobody could post: list the sender addresses, or 0.0.0.0/0 and ::/0 to allow all", wiFieldAllowedIPs)
	}
	if err := parseToken(conf, c); err != nil {
		return err
	}
	if conf.Contains(wiFieldRateLimit) {
		c.rateLimit, err = conf.FieldString(wiFieldRateLimit)
	}
	return err
}

// parseToken reads the shared secret posts must carry, if any.
func parseToken(conf *service.ParsedConfig, c *webhookConfig) error {
	token, err := conf.FieldString(wiFieldToken)
	if err != nil {
		return err
	}
	header, err := conf.FieldString(wiFieldTokenHeader)
	if err != nil {
		return err
	}
	c.tokens, err = parseTokens(token, header)
	return err
}

// parseLimits reads the bounds on what one post, and all posts at once, may
// hold.
func parseLimits(conf *service.ParsedConfig, c *webhookConfig) (err error) {
	var maxBody, maxBodies int
	for _, f := range []struct {
		field string
		v     *int
	}{
		{wiFieldMaxBodyBytes, &maxBody},
		{wiFieldMaxEventsPerPost, &c.maxEventsPerPost},
		{wiFieldMaxInFlight, &c.maxInFlight},
		{wiFieldMaxBodyBytesInFlight, &maxBodies},
	} {
		if *f.v, err = positiveInt(conf, f.field); err != nil {
			return err
		}
	}
	c.maxBodyBytes, c.maxBodyBytesInFlight = int64(maxBody), int64(maxBodies)
	// The largest post must fit beside the share kept for small posts, or
	// it would be answered 503 for ever.
	largest := largestPostCost(c.maxBodyBytes, c.maxEventsPerPost)
	if least := largest + largest/(smallShareDivisor-1) + 1; c.maxBodyBytesInFlight < least {
		return fmt.Errorf("%s (%d) is below what the largest post can hold (%d: five times %s, for a compressed form post, and %d bytes for each of %s) plus the eighth kept for small posts, so that post could never be stored: raise it to at least %d", wiFieldMaxBodyBytesInFlight, maxBodies, largest, wiFieldMaxBodyBytes, eventBytes+16, wiFieldMaxEventsPerPost, least)
	}
	return nil
}

// positiveInt reads an integer field that must be over zero.
func positiveInt(conf *service.ParsedConfig, field string) (int, error) {
	v, err := conf.FieldInt(field)
	if err == nil && v <= 0 {
		err = fmt.Errorf("%s must be positive, got %d", field, v)
	}
	return v, err
}

func parseTimeouts(conf *service.ParsedConfig, c *webhookConfig) (err error) {
	for _, f := range []struct {
		field string
		d     *time.Duration
	}{
		{wiFieldReadHeaderTimeout, &c.readHeaderTimeout},
		{wiFieldReadTimeout, &c.readTimeout},
		{wiFieldWriteTimeout, &c.writeTimeout},
		{wiFieldIdleTimeout, &c.idleTimeout},
		{wiFieldAckTimeout, &c.ackTimeout},
		{wiFieldRetryAfter, &c.retryAfter},
	} {
		if *f.d, err = conf.FieldDuration(f.field); err != nil {
			return err
		}
	}
	return nil
}

func parseTLS(conf *service.ParsedConfig, c *webhookConfig) (err error) {
	tlsConf := conf.Namespace(wiFieldTLS)
	if c.tlsEnabled, err = tlsConf.FieldBool(wiFieldTLSEnabled); err != nil {
		return err
	}
	if c.tlsCertFile, err = tlsConf.FieldString(wiFieldTLSCertFile); err != nil {
		return err
	}
	if c.tlsKeyFile, err = tlsConf.FieldString(wiFieldTLSKeyFile); err != nil {
		return err
	}
	if c.tlsEnabled && (c.tlsCertFile == "" || c.tlsKeyFile == "") {
		return errors.New("tls is enabled but cert_file or key_file is empty: name both, or turn tls off")
	}
	return nil
}

// parseKeeping reads what is kept of posts: the rejected file, the log line
// and the inspector.
func parseKeeping(conf *service.ParsedConfig, c *webhookConfig) (err error) {
	if c.rejectedFile, err = conf.FieldString(wiFieldRejectedFile); err != nil {
		return err
	}
	maxRejected, err := conf.FieldInt(wiFieldRejectedMaxBytes)
	if err != nil {
		return err
	}
	c.rejectedMaxBytes = int64(maxRejected)
	if c.logPosts, err = conf.FieldBool(wiFieldLogPosts); err != nil {
		return err
	}
	inspect := conf.Namespace(wiFieldInspect)
	if c.inspectAddress, err = inspect.FieldString(wiFieldInspectAddress); err != nil {
		return err
	}
	if c.inspectPosts, err = positiveInt(inspect, wiFieldInspectPosts); err != nil {
		return fmt.Errorf("%s: %w", wiFieldInspect, err)
	}
	return parseInspectMask(inspect, c)
}

// parseInspectMask reads which fields the inspector masks, if any.
func parseInspectMask(inspect *service.ParsedConfig, c *webhookConfig) error {
	mask, err := inspect.FieldBool(wiFieldInspectMask)
	if err != nil || !mask {
		return err
	}
	fields, err := inspect.FieldStringList(wiFieldInspectMaskFields)
	if err != nil {
		return err
	}
	if c.inspectMask, err = inspector.ParseMask(fields); err == nil && c.inspectMask == nil {
		err = errNoMaskFields
	}
	if err != nil {
		return fmt.Errorf("%s.%s: %w", wiFieldInspect, wiFieldInspectMaskFields, err)
	}
	return nil
}
