package diskqueue

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
	"github.com/netcore-connect/netcore-connect/internal/stage"
)

// HoldLock is the check `queue stats` makes (openReadOnly), for a salvage:
// it refuses, with an error wrapping ErrLocked, a file that a running
// netcore-connect holds, whose events are live and being delivered (copied
// into dead letters as well, they would be sent twice), and otherwise holds
// the file's shared lock until release is called, so that no receiver
// starts on the file while it is read. bbolt takes the lock before it reads
// a byte of the file, so a damaged file is told locked or not as well; one
// that bbolt then cannot open is not held (no receiver can start on it).
func HoldLock(path string) (release func(), err error) {
	defer func() {
		if r := recover(); r != nil { // bbolt panics on some damaged pages
			release, err = func() {}, nil
		}
	}()
	db, err := openReadOnly(path)
	if errors.Is(err, ErrLocked) {
		return nil, err
	}
	if err != nil { // damage, for Salvage to read around
		return func() {}, nil
	}
	return func() { _ = db.Close() }, nil
}

// Salvage reads a queue file that bbolt refuses (a damaged page stops the
// start, which is right) and hands every stored event whose record's
// checksum holds to keep, in the order they were stored, each with its
// record's sequence number. It reads the file's pages itself, with every
// offset checked, instead of walking bbolt's tree: a garbled page costs the
// records on it, never the rest, and never a panic.
//
// A post record (a whole post, stored by a queue with explode set) is split
// into its events with explode, which must be the settings the queue ran
// with, so that the events are what the queue would have sent. Every event
// of a post is handed out, those already delivered too: the settled marks
// that say which were may be old copies on freed pages (the scan cannot
// tell which bucket, or which copy, a page holds), and a wrong mark read
// here would drop an event that was never delivered. Salvage hands out every
// event at least once; events of a partly delivered post may be sent again,
// each with its event id for telling them apart. An event that failed and
// was written as a record of its own is handed out from that record alone,
// not from its post as well.
// explode may be nil only for a file without post records.
//
// Pages that bbolt's free list names as free are skipped, since they hold
// old copies of records that may have been delivered already. When the free
// list itself cannot be read, every page is scanned and the report says so:
// some of the records handed out may then be delivered a second time.
//
// The file is mapped, not read into memory, and a record is copied out only
// when it is handed to keep: a salvage holds an index of the records (a few
// dozen bytes each), one post's events and what keep holds, not the file,
// whatever its size.
func Salvage(path string, explode *netcorepost.Exploder, keep func(seq uint64, msg *service.Message) error) (SalvageReport, error) {
	data, unmap, err := mapFile(path)
	if err != nil {
		return SalvageReport{}, fmt.Errorf("reading %s: %w", path, err)
	}
	defer unmap()
	s := salvager{data: data, records: map[uint64][]byte{}}
	s.readLayout()
	for id := uint64(2); id < s.highWater; id++ {
		if s.free[id] {
			continue
		}
		id += s.scanPage(id)
	}
	s.countDamaged()
	seqs := make([]uint64, 0, len(s.records))
	for seq := range s.records {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	// Checked before anything is handed out: half a salvage, then an
	// error, would leave dead letters to sort out before running it again.
	if explode == nil {
		for _, seq := range seqs {
			if isPostRecord(s.records[seq]) {
				return s.report, fmt.Errorf("%s holds whole posts (record %d is one), stored by a disk_queue with explode set: salvage needs the explode settings the queue ran with to split them into events (queue salvage --timezone)", path, seq)
			}
		}
	} else {
		s.rewritten = s.eventRecordIDs(seqs)
	}
	for _, seq := range seqs {
		msgs, err := s.events(s.records[seq], explode)
		if err != nil { // its checksum held, its metadata or events did not
			s.report.Damaged++
			continue
		}
		for _, msg := range msgs {
			if err := keep(seq, msg); err != nil {
				return s.report, err
			}
			s.report.Records++
		}
	}
	return s.report, nil
}

// events decodes a record whose checksum holds into its events.
func (s *salvager) events(rec []byte, explode *netcorepost.Exploder) (service.MessageBatch, error) {
	// A copy: the messages outlive the map.
	rec = bytes.Clone(rec)
	if !isPostRecord(rec) {
		msg, err := decodeRecord(rec)
		if err != nil {
			return nil, err
		}
		return service.MessageBatch{msg}, nil
	}
	base, panels, damaged, err := decodePostRecord(rec)
	if err != nil {
		return nil, err
	}
	// An event whose own checksum fails costs that event alone.
	s.report.Posts++
	s.report.Damaged += len(damaged)
	storedAt, _ := recordStoredAt(rec)
	received := netcorepost.ReceivedAtOr(base, storedAt)
	var msgs service.MessageBatch
	copies := netcorepost.CopiesOf(panels, true)
	i := 0 // the event's number across the panels
	for _, panel := range panels {
		for j, raw := range panel.Events {
			if _, bad := slices.BinarySearch(damaged, i); !bad {
				// An event that cannot be exploded costs itself, as in the queue.
				msg, err := explode.ExplodeEvent(base, received, panel.Name, j, copies.Of(i), raw, true)
				switch {
				case err != nil:
					s.report.Damaged++
				case s.rewritten[eventID(msg)]:
					// Handed out from its own record, as the queue would
					// have retried it: not twice.
				default:
					msgs = append(msgs, msg)
				}
			}
			i++
		}
	}
	return msgs, nil
}

// eventRecordIDs is the set of event ids of the event records among seqs.
// In a queue that stores posts whole, an event record is an event of a post
// that failed and was written as a record of its own (rewriteLocked), while
// its post may still hold it unsettled: salvage hands it out from its own
// record alone. It holds one id per such record, not per event of the file.
func (s *salvager) eventRecordIDs(seqs []uint64) map[string]bool {
	ids := map[string]bool{}
	for _, seq := range seqs {
		if rec := s.records[seq]; !isPostRecord(rec) {
			if msg, err := decodeRecord(bytes.Clone(rec)); err == nil {
				if id := eventID(msg); id != "" {
					ids[id] = true
				}
			}
		}
	}
	return ids
}

// eventID is msg's event id, or "" for a message without one.
func eventID(msg *service.Message) string {
	id, _ := msg.MetaGet(stage.MetaEventID)
	return id
}

// SalvageReport says what Salvage found.
type SalvageReport struct {
	PageSize        int
	Pages           int // pages scanned
	UnreadablePages int // pages that are not what their place says (garbled)
	// Events handed to keep, their record's checksum intact: an event
	// record's event, or each event of a post record.
	Records int
	// Post records among them, each split into every one of its events,
	// delivered or not.
	Posts int
	// Records whose checksum failed (no intact copy found), or that could
	// not be decoded or split: a post record counts once, whatever its
	// events; and events of intact post records whose own checksum failed,
	// one each.
	Damaged       int
	FreeListKnown bool // false: freed pages were scanned too
}

// bbolt's page layout (go.etcd.io/bbolt/internal/common/page.go, meta.go):
// a 16-byte header (id uint64, flags uint16, count uint16, overflow uint32),
// then 16-byte leaf elements (flags, pos, ksize, vsize uint32, pos counted
// from the element), little-endian on the machines it runs on here.
const (
	pageHeader      = 16
	leafElement     = 16
	leafPageFlag    = 0x02
	freelistFlag    = 0x10
	bucketLeafFlag  = 0x01
	boltMagic       = 0xED0CDAED
	inlineBucketHdr = 16 // root pgid and sequence of a bucket stored in its parent
)

type salvager struct {
	data      []byte
	pageSize  uint64
	highWater uint64
	free      map[uint64]bool
	records   map[uint64][]byte // whole records, in data, by sequence number
	rewritten map[string]bool   // event ids of event records (eventRecordIDs)
	failed    []uint64          // keys of values that start as records do and fail their checksum
	report    SalvageReport
}

// readLayout finds the page size, the high-water mark and the free pages
// from the newer of the two meta pages whose checksum holds.
func (s *salvager) readLayout() {
	var best *boltMeta
	for _, off := range []int{0, 4096, 16 << 10} {
		if m, ok := readMeta(s.data, off); ok && (best == nil || m.txid > best.txid) {
			best = &m
		}
	}
	s.pageSize, s.highWater = 16<<10, uint64(len(s.data))/(16<<10)
	if best != nil {
		s.pageSize = uint64(best.pageSize)
		s.highWater = min(best.pgid, uint64(len(s.data))/s.pageSize)
		s.free, s.report.FreeListKnown = s.readFreeList(best.freelist)
	}
	s.report.PageSize = int(s.pageSize)
}

type boltMeta struct {
	pageSize       uint32
	freelist, pgid uint64
	txid           uint64
}

func readMeta(data []byte, pageOffset int) (boltMeta, bool) {
	const metaSize = 4 + 4 + 4 + 4 + 16 + 8 + 8 + 8 + 8
	start := pageOffset + pageHeader
	if start+metaSize > len(data) {
		return boltMeta{}, false
	}
	m := data[start : start+metaSize]
	le := binary.LittleEndian
	h := fnv.New64a()
	h.Write(m[:metaSize-8])
	if le.Uint32(m) != boltMagic || h.Sum64() != le.Uint64(m[metaSize-8:]) {
		return boltMeta{}, false
	}
	meta := boltMeta{pageSize: le.Uint32(m[8:]), freelist: le.Uint64(m[32:]), pgid: le.Uint64(m[40:]), txid: le.Uint64(m[48:])}
	return meta, meta.pageSize >= 1024 && meta.pageSize <= 1<<20
}

func (s *salvager) readFreeList(id uint64) (map[uint64]bool, bool) {
	le := binary.LittleEndian
	head, ok := s.page(id, 0)
	if !ok || le.Uint16(head[8:]) != freelistFlag {
		return nil, false
	}
	page, ok := s.page(id, uint64(le.Uint32(head[12:])))
	if !ok {
		return nil, false
	}
	count, ids := uint64(le.Uint16(page[10:])), page[pageHeader:]
	if count == 0xFFFF { // the count overflowed into the first element
		count, ids = le.Uint64(ids), ids[8:]
	}
	if count > uint64(len(ids))/8 {
		return nil, false
	}
	free := make(map[uint64]bool, count)
	for i := range count {
		free[le.Uint64(ids[i*8:])] = true
	}
	return free, true
}

// page is page id and its overflow pages, if the file holds them and the
// page's header names it: a garbled page names another, or none.
func (s *salvager) page(id, overflow uint64) ([]byte, bool) {
	start, end := id*s.pageSize, (id+1+overflow)*s.pageSize
	if end > uint64(len(s.data)) || end <= start {
		return nil, false
	}
	p := s.data[start:end]
	return p, binary.LittleEndian.Uint64(p) == id
}

// scanPage reads the records on page id, and says how many overflow pages
// it spans, to skip them.
func (s *salvager) scanPage(id uint64) (overflow uint64) {
	s.report.Pages++
	head, ok := s.page(id, 0)
	if !ok {
		s.report.UnreadablePages++
		return 0
	}
	overflow = uint64(binary.LittleEndian.Uint32(head[12:]))
	page, ok := s.page(id, overflow)
	if !ok {
		s.report.UnreadablePages++
		return 0
	}
	if binary.LittleEndian.Uint16(page[8:]) == leafPageFlag {
		s.scanLeaf(page)
	}
	return overflow
}

// scanLeaf reads the elements of a leaf page: a record (an 8-byte sequence
// key and a value whose checksum holds), or a small bucket kept inline,
// whose own page is scanned in turn.
func (s *salvager) scanLeaf(page []byte) {
	le := binary.LittleEndian
	count := int(le.Uint16(page[10:]))
	for i := range count {
		at := pageHeader + i*leafElement
		if at+leafElement > len(page) {
			return
		}
		flags, pos := le.Uint32(page[at:]), uint64(le.Uint32(page[at+4:]))
		ksize, vsize := uint64(le.Uint32(page[at+8:])), uint64(le.Uint32(page[at+12:]))
		kStart := uint64(at) + pos
		if kStart+ksize+vsize > uint64(len(page)) || kStart+ksize+vsize < kStart {
			continue
		}
		key, value := page[kStart:kStart+ksize], page[kStart+ksize:kStart+ksize+vsize]
		switch {
		case flags&bucketLeafFlag != 0:
			if len(value) > inlineBucketHdr+pageHeader && le.Uint64(value) == 0 {
				inline := value[inlineBucketHdr:]
				if le.Uint16(inline[8:]) == leafPageFlag {
					s.scanLeaf(inline)
				}
			}
		case len(key) == 8:
			s.keepRecord(key, value)
		}
	}
}

// keepRecord keeps a value that is a record whose checksum holds.
func (s *salvager) keepRecord(key, value []byte) {
	seq := binary.BigEndian.Uint64(key)
	if _, seen := s.records[seq]; seen || len(value) < recordHeader || (value[4] != recordVersion && value[4] != postRecordVersion) {
		return
	}
	if checkRecord(value) != nil {
		s.failed = append(s.failed, seq)
		return
	}
	s.records[seq] = value
}

// countDamaged counts the values whose checksum failed and whose record
// was not found intact. The scan cannot tell which bucket a page belongs
// to, and a settled mark (at its post's key: a checksum, then a bitmap of
// the post's events) can start as a record does: its fifth byte, the
// bitmap's first, is 1 or 2 (a record's version) for some sets of settled
// events, and the record's checksum then fails on it. A failed value at the
// key of an intact record is such a mark, or a garbled old copy of the
// record: either way no event is lost, whichever page was read first. A
// mark whose post is lost may be counted damaged with it.
func (s *salvager) countDamaged() {
	for _, seq := range s.failed {
		if _, ok := s.records[seq]; !ok {
			s.report.Damaged++
		}
	}
}
