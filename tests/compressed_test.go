package tests

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func compressed(t *testing.T, enc string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser = gzip.NewWriter(&buf)
	if enc == "deflate" {
		w = zlib.NewWriter(&buf)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestCompressedBodiesAreDecodedOrRefusedByName posts the samples compressed
// as a sender might: gzip and deflate are stored and delivered exactly as
// the plain posts; another encoding is refused with 415 naming it; a zip
// bomb is refused with 413 after reading at most max_body_bytes of it.
func TestCompressedBodiesAreDecodedOrRefusedByName(t *testing.T) {
	m := newMeiro(t)
	p := startProcess(t, options{env: m.env()})
	form := readFile(t, samplesDir+"/two_panels.form")
	for _, enc := range []string{"gzip", "deflate"} {
		req := newPost(t, p.webhook, "application/x-www-form-urlencoded", bytes.NewReader(compressed(t, enc, form)))
		req.Header.Set("Content-Encoding", enc)
		if status, answer := post(t, req); status != http.StatusOK || !strings.Contains(answer, `"events":3`) {
			t.Errorf("two_panels with %s: %d %s, want 200 with 3 events", enc, status, answer)
		}
	}
	// The same post twice (gzip, then deflate) is one post: three events.
	waitFor(t, "the three events at Meiro Events", 10*time.Second, func() bool { return len(m.received()) >= 3 })
	waitQuiet(t, p, m)
	if n := len(m.received()); n != 3 {
		t.Errorf("Meiro Events received %d events, want 3 (the repeat removed)", n)
	}

	req := newPost(t, p.webhook, "application/x-www-form-urlencoded", bytes.NewReader(form))
	req.Header.Set("Content-Encoding", "br")
	if status, answer := post(t, req); status != http.StatusUnsupportedMediaType || !strings.Contains(answer, `br`) {
		t.Errorf("Content-Encoding br: %d %s, want 415 naming br", status, answer)
	}

	bomb := compressed(t, "gzip", append([]byte(`{"p":[{"a":"`), make([]byte, 200<<20)...)) // 200 MiB inflated
	req = newPost(t, p.webhook, "application/json", bytes.NewReader(bomb))
	req.Header.Set("Content-Encoding", "gzip")
	before := peakRSSKiB(t, p.cmd.Process.Pid)
	if status, answer := post(t, req); status != http.StatusRequestEntityTooLarge || !strings.Contains(answer, "decompressed") {
		t.Errorf("a 200 MiB gzip bomb (%d KiB sent): %d %s, want 413 for the decompressed size", len(bomb)>>10, status, answer)
	}
	if grew := peakRSSKiB(t, p.cmd.Process.Pid) - before; grew > 64<<10 {
		t.Errorf("the bomb grew peak RSS by %d MiB, want at most about max_body_bytes (10 MiB)", grew>>10)
	}
}
