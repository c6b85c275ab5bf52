package netcorepost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/fate"
	"github.com/netcore-connect/netcore-connect/internal/rawjson"
	"github.com/netcore-connect/netcore-connect/internal/stage"
)

// Fields of netcore_explode, and of disk_queue's explode.
const (
	// FieldTimezone is the zone of event_params.ts; its presence turns on disk_queue's explode.
	FieldTimezone         = "timezone"
	epFieldPanelField     = "panel_field"
	epFieldEventTimeField = "event_time_field"
	epFieldEventIDField   = "event_id_field"
)

// DefaultTimezone is the zone event_params.ts is read in unless set.
const DefaultTimezone = "Asia/Kolkata"

// ExplodeFields are the settings of exploding a post: netcore_explode's
// fields, which disk_queue's explode takes too. With zoneDefault empty the
// timezone must be given: an optional object whose fields all have
// defaults counts as present even when left out.
func ExplodeFields(zoneDefault string) []*service.ConfigField {
	zone := service.NewStringField(FieldTimezone).
		Description("The IANA time zone that `event_params.ts` is written in. Netcore's documentation does not say; India Standard Time (" + DefaultTimezone + ") is what Netcore's panels show.")
	if zoneDefault != "" {
		zone = zone.Default(zoneDefault)
	}
	return []*service.ConfigField{
		zone,
		service.NewStringField(epFieldPanelField).
			Description("The name of the added panel field; empty to leave it out.").
			Default("panel_name"),
		service.NewStringField(epFieldEventTimeField).
			Description("The name of the added event time field; empty to leave it out.").
			Default("event_time"),
		service.NewStringField(epFieldEventIDField).
			Description("The name of the added event id field; empty to leave it out.").
			Default("event_id"),
	}
}

// explodeConfig is the parsed configuration of a netcore_explode processor.
type explodeConfig struct {
	location       *time.Location
	panelField     string
	eventTimeField string
	eventIDField   string
}

// NewExploder reads the fields of ExplodeFields.
func NewExploder(conf *service.ParsedConfig) (*Exploder, error) {
	var c explodeConfig
	zone, err := conf.FieldString(FieldTimezone)
	if err != nil {
		return nil, err
	}
	if c.location, err = time.LoadLocation(zone); err != nil {
		return nil, fmt.Errorf("timezone %q: %w", zone, err)
	}
	// A slice, not a map: of two bad fields, the same is reported each time.
	for _, f := range []struct {
		field string
		name  *string
	}{
		{epFieldPanelField, &c.panelField},
		{epFieldEventTimeField, &c.eventTimeField},
		{epFieldEventIDField, &c.eventIDField},
	} {
		if *f.name, err = conf.FieldString(f.field); err != nil {
			return nil, err
		}
	}
	return &Exploder{
		conf:           c,
		panelField:     quotedName(c.panelField),
		eventTimeField: quotedName(c.eventTimeField),
		eventIDField:   quotedName(c.eventIDField),
	}, nil
}

// Exploder splits a post into one message per event: the work of
// netcore_explode, shared with the disk_queue buffer, which stores posts
// whole and splits them when it reads them.
type Exploder struct {
	conf explodeConfig
	// The added field names as JSON strings, nil when switched off.
	panelField, eventTimeField, eventIDField []byte
}

func quotedName(name string) []byte {
	if name == "" {
		return nil
	}
	return quoteName(name)
}

// ExplodePost makes one message per event of post, each a copy of base
// (its metadata, context) with the event as its body.
func (p *Exploder) ExplodePost(base *service.Message, post *Post) (service.MessageBatch, error) {
	received := ReceivedAt(base)
	copies := CopiesOf(post.Panels, post.Compact)
	batch := make(service.MessageBatch, 0, post.EventCount())
	for _, panel := range post.Panels {
		for i, raw := range panel.Events {
			out, err := p.ExplodeEvent(base, received, panel.Name, i, copies.Of(len(batch)), raw, post.Compact)
			if err != nil {
				return nil, err
			}
			batch = append(batch, out)
		}
	}
	return batch, nil
}

// ExplodeEvent makes the message of one event: event i of panel, the nth
// copy of it in its post (Copies), as ExplodePost does for each, received
// being ReceivedAt(base). The disk queue makes its events one by one as
// it hands them out, so that a big post is never in memory as messages
// all at once.
//
// compact says raw is compact JSON already (rawjson.AppendCompact), as
// the disk queue stores events: it is then copied, not compacted again.
func (p *Exploder) ExplodeEvent(base *service.Message, received time.Time, panel string, i, nth int, raw []byte, compact bool) (*service.Message, error) {
	ev, err := p.explodeEvent(panel, quoteName(panel), raw, nth, received, compact)
	if err != nil {
		return nil, fmt.Errorf("panel %q event %d: %w", panel, i, err)
	}
	out := base.Copy()
	out.SetBytes(ev.body)
	out.MetaSetMut(stage.MetaPanel, panel)
	out.MetaSetMut(stage.MetaEventIndex, i)
	out.MetaSetMut(stage.MetaEventID, ev.id)
	out.MetaSetMut(stage.MetaEventTimeSource, ev.timeSource)
	return out, nil
}

type explodedEvent struct {
	body       []byte
	id         string
	timeSource string
}

// Sources of event_time, as reported in netcore_event_time_source.
const (
	timeSourceTS       = "ts"
	timeSourceReceived = "received_at"
)

func (p *Exploder) explodeEvent(panel string, quotedPanel, raw []byte, nth int, received time.Time, isCompact bool) (explodedEvent, error) {
	// Room for the added fields, so that appending them does not copy.
	compact := make([]byte, 0, len(raw)+128)
	if isCompact {
		compact = append(compact, raw...)
	} else {
		compact = rawjson.AppendCompact(compact, raw)
	}
	ev := explodedEvent{id: eventID(panel, compact, nth), timeSource: timeSourceReceived}
	eventTime := received

	// One walk over the top level finds event_params and which of our
	// field names the event already uses (those are never overwritten).
	var hasPanel, hasTime, hasID bool
	err := rawjson.Members(compact, func(key, value []byte) error {
		// A key without escapes is compared as it stands, which allocates
		// nothing: string(key) == "..." is not a conversion.
		if bytes.IndexByte(key, '\\') >= 0 {
			decoded, err := rawjson.Key(key)
			if err != nil {
				return err
			}
			key = []byte(decoded)
		}
		if string(key) == "event_params" {
			if t, ok := p.eventParamsTime(value); ok {
				eventTime, ev.timeSource = t, timeSourceTS
			}
		}
		hasPanel = hasPanel || string(key) == p.conf.panelField
		hasTime = hasTime || string(key) == p.conf.eventTimeField
		hasID = hasID || string(key) == p.conf.eventIDField
		return nil
	})
	if err != nil {
		return explodedEvent{}, err
	}

	body := compact[:len(compact)-1] // the closing brace, put back below
	empty := len(body) == 1
	// name appends `,"name":`; the value is appended after it in place.
	name := func(quotedName []byte) {
		if !empty {
			body = append(body, ',')
		}
		empty = false
		body = append(body, quotedName...)
		body = append(body, ':')
	}
	if p.panelField != nil && !hasPanel {
		name(p.panelField)
		body = append(body, quotedPanel...)
	}
	if p.eventTimeField != nil && !hasTime {
		name(p.eventTimeField)
		body = append(eventTime.UTC().AppendFormat(append(body, '"'), time.RFC3339), '"')
	}
	if p.eventIDField != nil && !hasID {
		name(p.eventIDField)
		body = append(append(append(body, '"'), ev.id...), '"')
	}
	ev.body = append(body, '}')
	return ev, nil
}

// eventParamsTime reads event_params.ts: yyMMddHHmmss as a 12-digit number
// or string, in the configured zone.
func (p *Exploder) eventParamsTime(params []byte) (time.Time, bool) {
	if rawjson.KindOf(params) != rawjson.Object {
		return time.Time{}, false
	}
	ts, ok := rawjson.Field(params, "ts")
	if !ok {
		return time.Time{}, false
	}
	if len(ts) == 14 && ts[0] == '"' && ts[13] == '"' {
		ts = ts[1:13]
	}
	if len(ts) != 12 {
		return time.Time{}, false
	}
	return parseTS(ts, p.conf.location)
}

// parseTS reads 12 digits yyMMddHHmmss in loc, as time.ParseInLocation
// with the layout "060102150405" does (a year under 69 is 20yy, else 19yy;
// out-of-range fields are refused, not carried over), without its cost:
// it runs for every event delivered.
func parseTS(ts []byte, loc *time.Location) (time.Time, bool) {
	var f [6]int
	for i := range f {
		hi, lo := ts[2*i]-'0', ts[2*i+1]-'0'
		if hi > 9 || lo > 9 {
			return time.Time{}, false
		}
		f[i] = int(hi)*10 + int(lo)
	}
	year, month, day := f[0]+2000, time.Month(f[1]), f[2]
	if f[0] >= 69 {
		year -= 100
	}
	if month < time.January || month > time.December || day < 1 || day > daysIn(month, year) || f[3] > 23 || f[4] > 59 || f[5] > 59 {
		return time.Time{}, false
	}
	return time.Date(year, month, day, f[3], f[4], f[5], 0, loc), true
}

// daysIn is the number of days of month in year.
func daysIn(month time.Month, year int) int {
	return time.Date(year, month+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// quoteName is name as a JSON string. Panel names are plain words almost
// always, written between quotes as they are; others go through
// encoding/json, which escapes them as netcore_explode always has.
func quoteName(name string) []byte {
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(name) // a string always encodes
			return q
		}
	}
	return append(append(append(make([]byte, 0, len(name)+2), '"'), name...), '"')
}

// eventID is a stable id for an event: the same panel and bytes, the same
// copy of them in a post, sent again, give the same id. It is the hex of
// EventKey.
func eventID(panel string, event []byte, nth int) string {
	key := EventKey(panel, event, nth)
	return hex.EncodeToString(key[:])
}

// EventKey is the event id as bytes, as the inspector and the disk_queue's
// repeats index keep it: the first 16 bytes of sha256(panel, NUL, event),
// event being the event's compact JSON (rawjson.AppendCompact). The nth
// identical copy of it in one post (Copies; nth from 1) hashes NUL and nth
// in decimal after that: ids that events had before copies were numbered
// stay as they were (the first copy's), and a hashed text that ends in a
// digit is never that of a first copy, which ends in '}'.
func EventKey(panel string, event []byte, nth int) fate.ID {
	h := sha256.New()
	h.Write([]byte(panel))
	h.Write([]byte{0})
	h.Write(event)
	if nth > 0 {
		h.Write(strconv.AppendInt([]byte{0}, int64(nth), 10))
	}
	var sum [sha256.Size]byte
	var key fate.ID
	copy(key[:], h.Sum(sum[:0]))
	return key
}

// ReceivedAt is when the post arrived, as the webhook input recorded it, or
// now for posts from other inputs.
func ReceivedAt(msg *service.Message) time.Time { return ReceivedAtOr(msg, time.Now()) }

// ReceivedAtOr is ReceivedAt with another time for posts that do not say.
func ReceivedAtOr(msg *service.Message, otherwise time.Time) time.Time {
	if v, ok := msg.MetaGet(stage.MetaReceivedAt); ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t
		}
	}
	return otherwise
}

// postKey is the message context key under which the webhook input passes
// its decoded post to netcore_explode, so that a post is decoded only once.
type postKey struct{}

// WithPost is msg carrying post, decoded from msg's body, so that PostOf
// does not decode it again while the body is unchanged.
func WithPost(msg *service.Message, post *Post) *service.Message {
	return msg.WithContext(context.WithValue(msg.Context(), postKey{}, post))
}

// PostOf returns the post the message carries. The decoded post from the
// input is reused only while the body is still the very bytes it was decoded
// from; a body changed by an earlier processor, or from another input, is
// decoded here.
func PostOf(msg *service.Message) (*Post, error) {
	body, err := msg.AsBytes()
	if err != nil {
		return nil, err
	}
	if post, ok := msg.Context().Value(postKey{}).(*Post); ok && sameBytes(body, post.Data) {
		return post, nil
	}
	return DecodeData(body)
}

func sameBytes(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}
