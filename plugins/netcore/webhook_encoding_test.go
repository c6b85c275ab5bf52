package netcore

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
)

func compress(t *testing.T, enc string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch enc {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "zlib":
		w = zlib.NewWriter(&buf)
	case "raw deflate":
		w, _ = flate.NewWriter(&buf, flate.DefaultCompression)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecompressGzipAndBothKindsOfDeflate(t *testing.T) {
	post := []byte(`{"p":[{"a":12345678901234567890}]}`)
	for _, c := range []struct {
		format string
		enc    contentEncoding
	}{{"gzip", encodingGzip}, {"zlib", encodingDeflate}, {"raw deflate", encodingDeflate}} {
		budget := &bodyBudget{limit: 1 << 20}
		hold := budget.hold()
		got, err := decompress(c.enc, compress(t, c.format, post), 1<<20, hold)
		if err != nil || !bytes.Equal(got, post) {
			t.Errorf("%s: %q, %v; want the post back", c.format, got, err)
		}
		if hold.held < int64(len(post)) || budget.used != hold.held {
			t.Errorf("%s: held %d of the budget (used %d) for %d bytes", c.format, hold.held, budget.used, len(post))
		}
	}
}

func TestDecompressStopsAZipBombAtTheLimit(t *testing.T) {
	bomb := compress(t, "gzip", make([]byte, 64<<20)) // 64 MiB of zeros, about 64 KiB sent
	hold := (&bodyBudget{limit: 256 << 20}).hold()
	_, err := decompress(encodingGzip, bomb, 1<<20, hold)
	if !errors.Is(err, errDecompressedTooLarge) {
		t.Fatalf("a 64 MiB bomb within a 1 MiB limit: %v, want errDecompressedTooLarge", err)
	}
	if hold.held > 2<<20 {
		t.Errorf("%d bytes taken from the budget to find it out, want about the limit", hold.held)
	}
}

func TestDecompressRefusesGarbageWith400(t *testing.T) {
	_, err := decompress(encodingGzip, []byte("not gzip at all"), 1<<20, (&bodyBudget{limit: 1 << 20}).hold())
	var rej *netcorepost.RejectError
	if !errors.As(err, &rej) || rej.Status != http.StatusBadRequest {
		t.Fatalf("garbage as gzip: %v, want a 400", err)
	}
}

func TestBodyEncodingNamesWhatItRefuses(t *testing.T) {
	for enc, want := range map[string]contentEncoding{"": encodingIdentity, "identity": encodingIdentity, "GZIP": encodingGzip, "x-gzip": encodingGzip, "deflate": encodingDeflate} {
		r := httptest.NewRequest(http.MethodPost, "/netcore", nil)
		r.Header.Set("Content-Encoding", enc)
		if got, rej := bodyEncoding(r); rej != nil || got != want {
			t.Errorf("Content-Encoding %q: %q, %v; want %q", enc, got, rej, want)
		}
	}
	r := httptest.NewRequest(http.MethodPost, "/netcore", nil)
	r.Header.Set("Content-Encoding", "br")
	if _, rej := bodyEncoding(r); rej == nil || rej.Status != http.StatusUnsupportedMediaType || !bytes.Contains([]byte(rej.Reason), []byte(`"br"`)) {
		t.Errorf("Content-Encoding br: %v, want a 415 naming br", rej)
	}
}
