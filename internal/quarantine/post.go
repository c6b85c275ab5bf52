package quarantine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/durabledir"
)

// Header is what a quarantined post's file says of it, on its first line.
type Header struct {
	Client     string         `json:"client_ip"`
	RequestID  string         `json:"request_id"`
	ReceivedAt time.Time      `json:"received_at"`
	Events     int            `json:"events"`
	Panels     map[string]int `json:"panels"` // events by panel name
}

// postExt ends the name of a post's file; a file being written ends in
// tmpExt until it is renamed into place (durabledir.WriteFile's name).
const (
	postExt = ".post"
	tmpExt  = ".tmp"
)

// maxHeaderBytes bounds a header line: a post's panel names are in it,
// and a post holds at most max_body_bytes.
const maxHeaderBytes = 16 << 20

// fileName is the name of h's post in its address's folder: oldest first
// when sorted.
func fileName(h Header) string {
	return fmt.Sprintf("%019d-%s%s", h.ReceivedAt.UnixNano(), h.RequestID, postExt)
}

// folderName is the folder of an address's posts: an IPv6 address's colons
// are not safe in every file system's names. Addresses come without zones
// (the allowlist strips them), and Requests takes only IP addresses, so no
// name leaves the quarantine's folder.
func folderName(client string) string {
	return strings.ReplaceAll(client, ":", "_")
}

// headerLine is h as the first line of its post's file.
func headerLine(h Header) ([]byte, error) {
	line, err := json.Marshal(h)
	if err != nil {
		return nil, fmt.Errorf("encoding the header of post %s: %w", h.RequestID, err)
	}
	return append(line, '\n'), nil
}

// writePost writes line (h's headerLine) and data as a new file in folder,
// durably (durabledir.WriteFile).
func writePost(folder string, h Header, line, data []byte) (path string, err error) {
	path = filepath.Join(folder, fileName(h))
	if err := durabledir.WriteFile(path, line, data); err != nil {
		return "", fmt.Errorf("quarantine: %w", err)
	}
	return path, nil
}

// ReadPost reads a post's file whole: its header and its data field, as
// posted.
func ReadPost(path string) (Header, []byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Header{}, nil, fmt.Errorf("reading quarantined post: %w", err)
	}
	end := bytes.IndexByte(raw, '\n')
	if end < 0 {
		return Header{}, nil, fmt.Errorf("quarantined post %s has no header line: move it aside", path)
	}
	h, err := parseHeader(path, raw[:end])
	return h, raw[end+1:], err
}

// readHeader reads only the header line of a post's file (a decoder reads
// the first JSON value and stops), and says the file's size.
func readHeader(path string) (Header, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, 0, fmt.Errorf("reading quarantined post: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return Header{}, 0, fmt.Errorf("reading quarantined post: %w", err)
	}
	var h Header
	err = json.NewDecoder(io.LimitReader(f, maxHeaderBytes)).Decode(&h)
	if err = checkHeader(path, h, err); err != nil {
		return Header{}, 0, err
	}
	return h, info.Size(), nil
}

func parseHeader(path string, line []byte) (Header, error) {
	var h Header
	err := json.Unmarshal(line, &h)
	return h, checkHeader(path, h, err)
}

// errNoClient is a header that decodes but names no client.
var errNoClient = errors.New("no client_ip")

// checkHeader says what is wrong with a header read from path, if anything.
func checkHeader(path string, h Header, decodeErr error) error {
	if decodeErr == nil && h.Client == "" {
		decodeErr = errNoClient
	}
	if decodeErr != nil {
		return fmt.Errorf("quarantined post %s has a header that cannot be read, so it is neither released nor dropped: move it out of the quarantine's folder and look at it: %w", path, decodeErr)
	}
	return nil
}
