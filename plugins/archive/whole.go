package archive

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// A crash while a batch was being appended can leave a torn record at the
// end of an hour file: half a line, or half a gzip member. Those events were
// never acknowledged, so the queue sends them again and they are archived
// again whole. Anything else that does not read back is damage to data that
// was acknowledged. examine tells the two apart, for the output (which cuts
// a torn tail off before appending, and moves a damaged file aside whole)
// and the input (which replays what is whole and reports the damage).

// tailChunk is how much of a file is read at a time: from its end, looking
// for the last newline, or on from a damaged member, looking for the next.
const tailChunk = 64 << 10

// layout is what an hour file holds, as examine found it.
type layout struct {
	size     int64
	modified time.Time // when the file was last written
	whole    []span    // the stretches that read back whole, in order; adjacent ones merged
	damaged  []damage  // gzip only: stretches between them that do not
	torn     int64     // where the torn tail starts; size when there is none
}

// examine reads f, an hour file, to find what of it reads back whole. A
// plain file is whole up to its last newline: each batch ends with one, so
// bytes after it are a batch whose write was cut short. A gzip file is read
// member by member (scanGzip).
func examine(f *os.File, gzipped bool) (layout, error) {
	info, err := f.Stat()
	if err != nil {
		return layout{}, fmt.Errorf("reading the size of %s: %w", f.Name(), err)
	}
	l := layout{size: info.Size(), modified: info.ModTime()}
	if !gzipped {
		if l.torn, err = plainWholeLength(f, l.size); err != nil {
			return layout{}, err
		}
		if l.torn > 0 {
			l.whole = []span{{0, l.torn}}
		}
		return l, nil
	}
	s, err := scanGzip(f, l.size)
	if err != nil {
		return layout{}, err
	}
	l.damaged, l.torn = s.damaged, s.torn
	for _, m := range s.intact {
		if n := len(l.whole); n > 0 && l.whole[n-1].end == m.start {
			l.whole[n-1].end = m.end
			continue
		}
		l.whole = append(l.whole, m)
	}
	return l, nil
}

func plainWholeLength(f *os.File, size int64) (int64, error) {
	buf := make([]byte, tailChunk)
	for end := size; end > 0; {
		start := max(end-tailChunk, 0)
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil {
			return 0, fmt.Errorf("reading the end of %s: %w", f.Name(), err)
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// countingReader counts the bytes read through it and keeps any read error
// other than the end of the file, which is a torn member, not a failure.
type countingReader struct {
	r   *bufio.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.keep(err)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	c.keep(err)
	return b, err
}

func (c *countingReader) keep(err error) {
	if err != nil && !errors.Is(err, io.EOF) && c.err == nil {
		c.err = err
	}
}
