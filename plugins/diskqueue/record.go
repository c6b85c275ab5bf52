package diskqueue

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"sync/atomic"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
)

// A record is one message on disk:
//
//	crc32c (4 bytes, big endian) of everything after it
//	version (1 byte, 1)
//	stored at (8 bytes, unix nanoseconds, big endian), for the queue's age
//	number of metadata pairs (uvarint), then each key and value (uvarint length, bytes)
//	the message body (the rest)
//
// The checksum catches a record damaged on disk, so that it is moved aside
// instead of being delivered wrong.
const recordVersion = 1

// recordHeader is the size of the checksum, version and stored-at time.
const recordHeader = 4 + 1 + 8

// recordStoredAt reads when a record was stored, without checking it.
func recordStoredAt(rec []byte) (time.Time, bool) {
	if len(rec) < recordHeader {
		return time.Time{}, false
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(rec[5:recordHeader]))), true
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errChecksum = errors.New("checksum mismatch")

func encodeRecord(msg *service.Message, storedAt time.Time) ([]byte, error) {
	return appendRecord(nil, msg, storedAt)
}

// appendRecord appends the record of msg to dst, so that the records of a
// post can share one allocation.
func appendRecord(dst []byte, msg *service.Message, storedAt time.Time) ([]byte, error) {
	body, err := msg.AsBytes()
	if err != nil {
		return nil, fmt.Errorf("reading message: %w", err)
	}
	start := len(dst)
	if dst == nil {
		dst = make([]byte, 0, recordHeader+1+len(body)+256)
	}
	rec := append(dst, 0, 0, 0, 0, recordVersion)
	rec = binary.BigEndian.AppendUint64(rec, uint64(storedAt.UnixNano()))
	rec = appendMeta(rec, msg)
	rec = append(rec, body...)
	sealRecord(rec[start:])
	return rec, nil
}

// appendMeta appends msg's metadata: the number of pairs (uvarint), then
// each key and value (uvarint length, bytes).
func appendMeta(rec []byte, msg *service.Message) []byte {
	// One walk appends the pairs after a one-byte count, right for up to
	// 127 pairs (a uvarint under 128 is one byte); more take a second walk.
	countAt := len(rec)
	rec = append(rec, 0)
	pairs := 0
	_ = msg.MetaWalk(func(k, v string) error {
		rec = appendField(rec, k)
		rec = appendField(rec, v)
		pairs++
		return nil
	})
	if pairs >= 0x80 {
		fields := append([]byte(nil), rec[countAt+1:]...)
		return append(binary.AppendUvarint(rec[:countAt], uint64(pairs)), fields...)
	}
	rec[countAt] = byte(pairs)
	return rec
}

// appendField appends a length (uvarint) and the bytes of s.
func appendField[T string | []byte](rec []byte, s T) []byte {
	return append(binary.AppendUvarint(rec, uint64(len(s))), s...)
}

// sealRecord writes the checksum of a whole record into its first 4 bytes.
func sealRecord(rec []byte) {
	binary.BigEndian.PutUint32(rec, crc32.Checksum(rec[4:], castagnoli))
}

// checkRecord says whether rec is whole: long enough, its checksum holding,
// a version this code reads.
//
// Of a post record, only the record's own checksum is checked here, which
// covers all but its events' JSON: each event has a checksum of its own.
func checkRecord(rec []byte) error {
	if len(rec) < recordHeader {
		return fmt.Errorf("record of %d bytes is too short", len(rec))
	}
	if isPostRecord(rec) {
		_, _, _, err := parsePost(rec)
		return err
	}
	if binary.BigEndian.Uint32(rec) != crc32.Checksum(rec[4:], castagnoli) {
		return errChecksum
	}
	if rec[4] != recordVersion {
		return fmt.Errorf("unknown record version %d", rec[4])
	}
	return nil
}

// decodeRecord checks an event record and rebuilds its message. The message
// owns rec, which must not be reused.
func decodeRecord(rec []byte) (*service.Message, error) {
	if isPostRecord(rec) {
		return nil, errors.New("a post record is not an event")
	}
	if err := checkRecord(rec); err != nil {
		return nil, err
	}
	msg := service.NewMessage(nil)
	body, err := decodeMeta(rec[recordHeader:], msg)
	if err != nil {
		return nil, err
	}
	msg.SetBytes(body)
	return msg, nil
}

// decodeMeta sets the metadata pairs at the start of b on msg and returns
// what follows them.
func decodeMeta(b []byte, msg *service.Message) ([]byte, error) {
	count, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, errors.New("malformed metadata count")
	}
	b = b[w:]
	for range count {
		k, rest, err := nextField(b)
		if err != nil {
			return nil, fmt.Errorf("malformed metadata: %w", err)
		}
		v, rest, err := nextField(rest)
		if err != nil {
			return nil, fmt.Errorf("malformed metadata: %w", err)
		}
		msg.MetaSetMut(internKey(k), string(v))
		b = rest
	}
	return b, nil
}

// skipMeta returns what follows the metadata pairs at the start of b.
func skipMeta(b []byte) ([]byte, error) {
	count, w := binary.Uvarint(b)
	if w <= 0 {
		return nil, errors.New("malformed metadata count")
	}
	b = b[w:]
	for range 2 * count {
		_, rest, err := nextField(b)
		if err != nil {
			return nil, fmt.Errorf("malformed metadata: %w", err)
		}
		b = rest
	}
	return b, nil
}

// nextField reads a length (uvarint) and that many bytes.
func nextField(b []byte) (field, rest []byte, err error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, errors.New("a length runs past the record")
	}
	return b[w : w+int(n)], b[w+int(n):], nil
}

// metaKeys holds the metadata keys seen in records (at most maxMetaKeys),
// so that decoding a record does not allocate the same few keys again for
// every event. Copied on write: lookups take no lock and allocate nothing.
var metaKeys atomic.Pointer[map[string]string]

const maxMetaKeys = 64

func internKey(k []byte) string {
	keys := metaKeys.Load()
	if keys != nil {
		if s, ok := (*keys)[string(k)]; ok {
			return s
		}
	}
	s := string(k)
	if keys == nil || len(*keys) < maxMetaKeys {
		grown := map[string]string{s: s}
		if keys != nil {
			maps.Copy(grown, *keys)
		}
		metaKeys.CompareAndSwap(keys, &grown) // lost to another: it is kept next time
	}
	return s
}
