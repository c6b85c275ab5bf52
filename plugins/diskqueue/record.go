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
	// One walk appends the pairs after a one-byte count, right for up to
	// 127 pairs (a uvarint under 128 is one byte); more take a second walk.
	rec := append(dst, 0, 0, 0, 0, recordVersion)
	rec = binary.BigEndian.AppendUint64(rec, uint64(storedAt.UnixNano()))
	rec = append(rec, 0)
	pairs := 0
	_ = msg.MetaWalk(func(k, v string) error {
		rec = binary.AppendUvarint(rec, uint64(len(k)))
		rec = append(rec, k...)
		rec = binary.AppendUvarint(rec, uint64(len(v)))
		rec = append(rec, v...)
		pairs++
		return nil
	})
	if countAt := start + recordHeader; pairs >= 0x80 {
		fields := append([]byte(nil), rec[countAt+1:]...)
		rec = append(binary.AppendUvarint(rec[:countAt], uint64(pairs)), fields...)
	} else {
		rec[countAt] = byte(pairs)
	}
	rec = append(rec, body...)
	binary.BigEndian.PutUint32(rec[start:], crc32.Checksum(rec[start+4:], castagnoli))
	return rec, nil
}

// checkRecord says whether rec is whole: long enough, its checksum holding,
// a version this code reads.
func checkRecord(rec []byte) error {
	if len(rec) < recordHeader {
		return fmt.Errorf("record of %d bytes is too short", len(rec))
	}
	if binary.BigEndian.Uint32(rec) != crc32.Checksum(rec[4:], castagnoli) {
		return errChecksum
	}
	if rec[4] != recordVersion {
		return fmt.Errorf("unknown record version %d", rec[4])
	}
	return nil
}

// decodeRecord checks a record and rebuilds its message. The message owns
// rec, which must not be reused.
func decodeRecord(rec []byte) (*service.Message, error) {
	if err := checkRecord(rec); err != nil {
		return nil, err
	}
	rest := rec[recordHeader:]
	next := func() ([]byte, error) {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return nil, errors.New("malformed metadata")
		}
		field := rest[w : w+int(n)]
		rest = rest[w+int(n):]
		return field, nil
	}
	count, w := binary.Uvarint(rest)
	if w <= 0 {
		return nil, errors.New("malformed metadata count")
	}
	rest = rest[w:]
	type pair struct{ k, v []byte }
	pairs := make([]pair, 0, min(count, 64))
	for range count {
		k, err := next()
		if err != nil {
			return nil, err
		}
		v, err := next()
		if err != nil {
			return nil, err
		}
		pairs = append(pairs, pair{k, v})
	}
	msg := service.NewMessage(rest)
	for _, p := range pairs {
		msg.MetaSetMut(internKey(p.k), string(p.v))
	}
	return msg, nil
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
