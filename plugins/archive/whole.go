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

// A crash while a batch was being appended can leave a torn record at the
// end of an hour file: half a line, or half a gzip member. Those events were
// never acknowledged, so the queue sends them again and they are archived
// again whole. wholeLength finds where the whole records end, so that the
// output cuts the torn tail off before appending and the input never reads it.

// tailChunk is how much of a plain file is read at a time, from its end,
// looking for the last newline.
const tailChunk = 64 << 10

// wholeLength is the length of the longest prefix of f made of whole
// records: up to the last newline of a plain file, up to the end of the last
// complete member of a gzip file.
func wholeLength(f *os.File, gzipped bool) (int64, error) {
	info, err := f.Stat()
	if err != nil {
		return 0, fmt.Errorf("reading the size of %s: %w", f.Name(), err)
	}
	if gzipped {
		return gzipWholeLength(f, info.Size())
	}
	return plainWholeLength(f, info.Size())
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

// gzipWholeLength reads the members of a gzip file one by one, checking each
// one's checksum, and returns where the last complete one ends.
func gzipWholeLength(f *os.File, size int64) (int64, error) {
	r := &countingReader{r: bufio.NewReader(io.NewSectionReader(f, 0, size))}
	var zr gzip.Reader
	whole := int64(0)
	for whole < size {
		// countingReader is an io.ByteReader, so gzip reads no further than
		// the member it decodes and r.n is exactly where that member ends.
		err := zr.Reset(r)
		if err == nil {
			zr.Multistream(false)
			_, err = io.Copy(io.Discard, &zr)
		}
		if r.err != nil {
			return 0, fmt.Errorf("reading %s: %w", f.Name(), r.err)
		}
		if err != nil {
			return whole, nil // the torn member starts here
		}
		whole = r.n
	}
	return whole, nil
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
