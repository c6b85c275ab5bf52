package diskqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
	"github.com/netcore-connect/netcore-connect/internal/rawjson"
)

// A post record is a whole post, stored by a queue with explode set and
// split into events when it is read:
//
//	crc32c (4 bytes, big endian) of everything after it but the events' JSON
//	version (1 byte, 2)
//	stored at (8 bytes, unix nanoseconds, big endian)
//	number of events (4 bytes, big endian)
//	the post's metadata, as in an event record
//	number of panels (uvarint), then for each: its name (uvarint length,
//	bytes), its number of events (uvarint), and each event: the crc32c of
//	its JSON (4 bytes), the length of its JSON (uvarint), its compact JSON
//
// One record, one key for a post, instead of one of each per event, and
// none of the per-event work (explode, a message each) on the path the
// sender waits on. Each event has a checksum of its own, so that damage to
// one event's bytes costs that event alone, as with a record per event;
// damage to the rest (metadata, lengths) costs the post. Events settled
// while others of the post still wait are marked in the settled bucket
// (marks.go).
const postRecordVersion = 2

// postHeader is the size of a post record's fixed fields.
const postHeader = recordHeader + 4

// maxPostEvents bounds the events of one post record (the count is 4 bytes,
// and the settled marks a bitmap of that many bits).
const maxPostEvents = 1 << 24

// appendPostRecord appends the record of msg, whose body is a Netcore post,
// to dst, and returns it with the dedupe keys of its events, in order: the
// bytes of the event ids the explode gives them when read.
func appendPostRecord(dst []byte, msg *service.Message, storedAt time.Time) ([]byte, []eventKey, error) {
	post, err := netcorepost.PostOf(msg)
	if err != nil {
		return nil, nil, fmt.Errorf("the queue explodes posts (its explode is set), and this message is not one: %w", err)
	}
	events := post.EventCount()
	if events > maxPostEvents {
		return nil, nil, fmt.Errorf("a post of %d events is more than the queue stores in one record (%d)", events, maxPostEvents)
	}
	start := len(dst)
	rec := append(dst, 0, 0, 0, 0, postRecordVersion)
	rec = binary.BigEndian.AppendUint64(rec, uint64(storedAt.UnixNano()))
	rec = binary.BigEndian.AppendUint32(rec, uint32(events))
	rec = appendMeta(rec, msg)
	rec = binary.AppendUvarint(rec, uint64(len(post.Panels)))
	keys := make([]eventKey, 0, events)
	copies := netcorepost.CopiesOf(post.Panels, post.Compact)
	var sum uint32
	from := start + 4       // what the record's checksum covers next
	var compact, buf []byte // buf: room for compacting events, reused
	for _, panel := range post.Panels {
		rec = appendField(rec, panel.Name)
		rec = binary.AppendUvarint(rec, uint64(len(panel.Events)))
		for _, ev := range panel.Events {
			compact = ev
			if !post.Compact {
				compact = rawjson.AppendCompact(buf[:0], ev)
				buf = compact
			}
			rec = binary.BigEndian.AppendUint32(rec, crc32.Checksum(compact, castagnoli))
			rec = binary.AppendUvarint(rec, uint64(len(compact)))
			sum = crc32.Update(sum, castagnoli, rec[from:])
			rec = append(rec, compact...)
			from = len(rec)
			keys = append(keys, eventKey(netcorepost.EventKey(panel.Name, compact, copies.Of(len(keys)))))
		}
	}
	sum = crc32.Update(sum, castagnoli, rec[from:])
	binary.BigEndian.PutUint32(rec[start:], sum)
	return rec, keys, nil
}

// recordEvents is how many events a record holds: a post record's count,
// 1 for an event record. Not checked: for counting what waits.
func recordEvents(rec []byte) int {
	if len(rec) >= postHeader && rec[4] == postRecordVersion {
		return int(binary.BigEndian.Uint32(rec[recordHeader:postHeader]))
	}
	return 1
}

func isPostRecord(rec []byte) bool { return len(rec) > 4 && rec[4] == postRecordVersion }

// decodePostRecord checks a post record and splits it into its panels of
// events. base carries the post's metadata and no body; damaged lists the
// events (counted across the panels) whose own checksum fails. The panels'
// events are slices of rec, which must not be reused.
func decodePostRecord(rec []byte) (base *service.Message, panels []netcorepost.Panel, damaged []int, err error) {
	meta, panels, damaged, err := parsePost(rec)
	if err != nil {
		return nil, nil, nil, err
	}
	base = service.NewMessage(nil)
	if _, err := decodeMeta(meta, base); err != nil {
		return nil, nil, nil, err
	}
	return base, panels, damaged, nil
}

// parsePost walks a post record: meta is where its metadata starts (and
// the rest after it); the record's checksum must hold, each event's is
// checked and the events whose checksum fails are listed in damaged.
func parsePost(rec []byte) (meta []byte, panels []netcorepost.Panel, damaged []int, err error) {
	if len(rec) < postHeader || rec[4] != postRecordVersion {
		return nil, nil, nil, fmt.Errorf("record of %d bytes is not a post", len(rec))
	}
	meta = rec[postHeader:]
	b, err := skipMeta(meta)
	if err != nil {
		return nil, nil, nil, err
	}
	count, w := binary.Uvarint(b)
	if w <= 0 || count > uint64(len(b)) {
		return nil, nil, nil, errors.New("malformed panel count")
	}
	b = b[w:]
	var sum uint32
	from := 4 // what the record's checksum covers next, as an offset in rec
	at := func(rest []byte) int { return len(rec) - len(rest) }
	total := 0
	panels = make([]netcorepost.Panel, count)
	for i := range panels {
		name, rest, err := nextField(b)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("panel %d: %w", i, err)
		}
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)) {
			return nil, nil, nil, fmt.Errorf("panel %d: malformed event count", i)
		}
		b = rest[w:]
		panels[i] = netcorepost.Panel{Name: string(name), Events: make([][]byte, n)}
		for j := range panels[i].Events {
			if len(b) < 4 {
				return nil, nil, nil, fmt.Errorf("panel %d event %d: the record ends", i, j)
			}
			eventSum := binary.BigEndian.Uint32(b)
			ev, rest, err := nextField(b[4:])
			if err != nil {
				return nil, nil, nil, fmt.Errorf("panel %d event %d: %w", i, j, err)
			}
			sum = crc32.Update(sum, castagnoli, rec[from:at(rest)-len(ev)])
			from = at(rest)
			if crc32.Checksum(ev, castagnoli) != eventSum {
				damaged = append(damaged, total)
			}
			panels[i].Events[j], b = ev, rest
			total++
		}
	}
	sum = crc32.Update(sum, castagnoli, rec[from:])
	if sum != binary.BigEndian.Uint32(rec) {
		return nil, nil, nil, errChecksum
	}
	if total != recordEvents(rec) || len(b) != 0 {
		return nil, nil, nil, fmt.Errorf("post record holds %d events and %d bytes more, its header says %d events", total, len(b), recordEvents(rec))
	}
	return meta, panels, damaged, nil
}
