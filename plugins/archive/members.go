package archive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
)

// A gzip hour file is a run of members, one per batch, each fsync'd before
// its batch is acknowledged. scanGzip sorts what a file holds into members
// that decode whole (their CRC-32 and length match), stretches that do not
// (damage: a flipped byte, a bad block), and a torn last member (a batch
// whose write was cut short: never acknowledged). Both the output, before
// it appends, and the input, before it replays, scan a file the same way.

// span is a byte range [start, end) of a file.
type span struct{ start, end int64 }

// damage is a stretch of a gzip file no member decodes whole from.
type damage struct {
	span
	lines int   // newlines decoded before the damage showed: events lost, at least
	cause error // what the decoder said
}

// gzipScan is what a gzip hour file holds.
type gzipScan struct {
	intact  []span   // members that decode whole, in file order
	damaged []damage // in file order
	torn    int64    // where a torn last member starts; the file's size when there is none
}

// gzipMagic starts every gzip member (ID1, ID2, CM=deflate).
var gzipMagic = []byte{0x1f, 0x8b, 0x08}

// flagOffset is where a member's FLG byte is, after the magic bytes. The output's gzip.Writer
// sets no name, comment, extra field or header CRC, so the byte is always
// 0; any other value was written whole and changed later. Read as flags,
// it would make the decoder look for fields that are not there and run
// into the end of the file, which would pass for a torn member.
const flagOffset = 3

// errFlags is a member header with flags the output never sets.
var errFlags = errors.New("the gzip header has flags the archive never sets (FLG is not 0)")

// scanGzip reads every member of f, of the given size. After a member that
// fails, it looks for the next offset where a member decodes whole, so that
// one damaged member costs only its own events. A failing member is torn
// only when it runs into the end of the file and no whole member follows
// it: a write cut short ends the file, while a member that is whole in
// length but fails its checksum, or one followed by whole members, was
// damaged after it was written.
func scanGzip(f *os.File, size int64) (gzipScan, error) {
	s := gzipScan{torn: size}
	d := &memberDecoder{f: f, size: size}
	for pos := int64(0); pos < size; {
		end, lines, bad, err := d.decode(pos)
		if err != nil {
			return s, err
		}
		if bad == nil {
			s.intact = append(s.intact, span{pos, end})
			pos = end
			continue
		}
		next, err := d.next(pos + 1)
		if err != nil {
			return s, err
		}
		if next == size && (errors.Is(bad, io.ErrUnexpectedEOF) || errors.Is(bad, io.EOF)) {
			s.torn = pos
			break
		}
		s.damaged = append(s.damaged, damage{span{pos, next}, lines, bad})
		pos = next
	}
	return s, nil
}

// memberDecoder decodes the members of a file one at a time, reading on
// from where the last one ended without seeking back.
type memberDecoder struct {
	f    *os.File
	size int64
	zr   gzip.Reader
	r    *countingReader
	base int64 // the offset r started at
}

// decode decodes the member starting at pos. bad is why it does not decode
// whole (nil when it does); err is a failure to read the file.
func (d *memberDecoder) decode(pos int64) (end int64, lines int, bad, err error) {
	if d.r == nil || d.base+d.r.n != pos || d.r.err != nil {
		d.r = &countingReader{r: bufio.NewReader(io.NewSectionReader(d.f, pos, d.size-pos))}
		d.base = pos
	}
	// countingReader is an io.ByteReader, so gzip reads no further than the
	// member it decodes and r.n is exactly where that member ends.
	if hdr, _ := d.r.r.Peek(flagOffset + 1); len(hdr) > flagOffset && hdr[flagOffset] != 0 {
		return pos, 0, errFlags, nil
	}
	bad = d.zr.Reset(d.r)
	nl := newlineCounter(0)
	if bad == nil {
		d.zr.Multistream(false)
		_, bad = io.Copy(&nl, &d.zr)
	}
	if d.r.err != nil {
		return 0, 0, nil, fmt.Errorf("reading %s: %w", d.f.Name(), d.r.err)
	}
	return d.base + d.r.n, int(nl), bad, nil
}

// next is the first offset from from on where a member decodes whole, or
// the file's size when there is none. A false start (the magic bytes
// inside compressed data) fails its checksum and is passed over.
func (d *memberDecoder) next(from int64) (int64, error) {
	buf := make([]byte, tailChunk+int64(len(gzipMagic))-1)
	for at := from; at < d.size; at += tailChunk {
		n, err := d.f.ReadAt(buf[:min(int64(len(buf)), d.size-at)], at)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("reading %s: %w", d.f.Name(), err)
		}
		for i := 0; ; i++ {
			j := bytes.Index(buf[i:n], gzipMagic)
			if j < 0 || int64(i+j) >= tailChunk {
				break
			}
			i += j
			_, _, bad, err := d.decode(at + int64(i))
			if err != nil {
				return 0, err
			}
			if bad == nil {
				return at + int64(i), nil
			}
		}
	}
	return d.size, nil
}

// newlineCounter counts the lines written to it.
type newlineCounter int

func (c *newlineCounter) Write(p []byte) (int, error) {
	*c += newlineCounter(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}
