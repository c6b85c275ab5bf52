package archive

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// lineReader reads the lines of the parts of one hour file that read back
// whole: the whole file up to a torn tail, or for a damaged gzip file the
// runs of members between the damage.
type lineReader struct {
	layout
	path    string
	file    *os.File
	gzipped bool
	zr      gzip.Reader
	r       *bufio.Reader // the current span's lines; nil before the first
	line    int
}

// openLines opens an hour file and finds what of it reads back whole.
func openLines(path string) (*lineReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if info, err := f.Stat(); err != nil || !info.Mode().IsRegular() {
		f.Close()
		if err == nil {
			err = fmt.Errorf("it is a %s, not a file", kindOf(info.Mode()))
		}
		return nil, err
	}
	gzipped := filepath.Ext(path) == ".gz"
	l, err := examine(f, gzipped)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &lineReader{layout: l, path: path, file: f, gzipped: gzipped}, nil
}

// next returns the next line without its newline, or io.EOF.
func (l *lineReader) next() ([]byte, error) {
	for {
		if l.r == nil {
			if len(l.whole) == 0 {
				return nil, io.EOF
			}
			if err := l.nextSpan(); err != nil {
				return nil, err
			}
		}
		line, err := l.r.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			l.line++
			return line[:len(line)-1], nil
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		// Only whole records are read, so each span ends on a newline.
		l.r = nil
	}
}

// nextSpan starts reading the next whole span.
func (l *lineReader) nextSpan() error {
	s := l.whole[0]
	l.whole = l.whole[1:]
	var src io.Reader = io.NewSectionReader(l.file, s.start, s.end-s.start)
	if l.gzipped {
		if err := l.zr.Reset(src); err != nil {
			return fmt.Errorf("from byte %d: %w", s.start, err)
		}
		src = &l.zr
	}
	l.r = bufio.NewReaderSize(src, 64<<10)
	return nil
}

func (l *lineReader) close() { l.file.Close() }

func kindOf(m os.FileMode) string {
	if m.IsDir() {
		return "folder"
	}
	return "special file (" + m.Type().String() + ")"
}
