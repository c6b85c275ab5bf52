package netcore

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
)

// contentEncoding is how a body was compressed, from its Content-Encoding.
type contentEncoding string

const (
	encodingIdentity contentEncoding = ""
	encodingGzip     contentEncoding = "gzip"
	encodingDeflate  contentEncoding = "deflate"
)

// errDecompressedTooLarge is returned when a compressed body inflates past
// max_body_bytes: a zip bomb is cut off after that many bytes.
var errDecompressedTooLarge = errors.New("decompressed body is over the limit")

// bodyEncoding reads the Content-Encoding of r. Anything but gzip, deflate
// and identity is refused with 415 naming it, before the body is read:
// without this a gzip body was refused with "form has no data field", which
// sent operators hunting in the wrong place.
func bodyEncoding(r *http.Request) (contentEncoding, *netcorepost.RejectError) {
	switch v := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); v {
	case "", "identity":
		return encodingIdentity, nil
	case "gzip", "x-gzip":
		return encodingGzip, nil
	case "deflate":
		return encodingDeflate, nil
	default:
		return "", &netcorepost.RejectError{Status: http.StatusUnsupportedMediaType,
			Reason: fmt.Sprintf("Content-Encoding %q is not supported: send the body as it is, or with gzip or deflate", v)}
	}
}

// decompress inflates body, reading at most limit bytes of output and taking
// them from hold as they come.
func decompress(enc contentEncoding, body []byte, limit int64, hold *budgetHold) (out []byte, err error) {
	zr, err := newDecompressor(enc, body)
	if err != nil {
		return nil, &netcorepost.RejectError{Status: http.StatusBadRequest, Reason: fmt.Sprintf("body is not valid %s: %v", enc, err)}
	}
	defer zr.Close()
	out, err = io.ReadAll(&budgetedReader{r: io.LimitReader(zr, limit+1), hold: hold})
	switch {
	case errors.Is(err, errBudgetSpent):
		return nil, err
	case err != nil:
		return nil, &netcorepost.RejectError{Status: http.StatusBadRequest, Reason: fmt.Sprintf("body is not valid %s: %v", enc, err)}
	case int64(len(out)) > limit:
		return nil, errDecompressedTooLarge
	}
	return out, nil
}

// newDecompressor reads gzip, or deflate as HTTP means it (zlib, RFC 9110),
// falling back to raw deflate, which some senders use instead.
func newDecompressor(enc contentEncoding, body []byte) (io.ReadCloser, error) {
	if enc == encodingGzip {
		return gzip.NewReader(bytes.NewReader(body))
	}
	if zr, err := zlib.NewReader(bytes.NewReader(body)); err == nil {
		return zr, nil
	}
	return flate.NewReader(bytes.NewReader(body)), nil
}
