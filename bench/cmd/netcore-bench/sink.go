package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// sink stands in for Meiro Events: it answers 200 to every JSON event and
// counts what it received. A JSON object is one event, a JSON array is
// len(array) events. It also tells repeats apart by the events' msgid, so
// that "delivered" means distinct events, and a system that sends some
// twice shows it.
type sink struct {
	down atomic.Bool // answer 503 to everything, as a Meiro Events that is down

	mu       sync.Mutex
	requests int
	events   int                 // including repeats
	ids      map[string]struct{} // distinct msgids seen
	noID     int                 // events without a msgid, each counted as distinct
	bad      int                 // requests that were not JSON events, answered 400
	conns    int                 // connections opened to the sink
	first    time.Time           // first and last event received
	last     time.Time
}

// sinkStats is a snapshot of a sink's counts.
type sinkStats struct {
	Requests   int
	Events     int
	Distinct   int // events whose msgid was not seen before, plus events without one
	Duplicates int
	Bad        int
	Conns      int // connections opened: many more than the sender's concurrency means no keep-alive
	First      time.Time
	Last       time.Time
}

func newSink() *sink { return &sink{ids: map[string]struct{}{}} }

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.down.Load() {
		http.Error(w, "the stand-in for Meiro Events is down", http.StatusServiceUnavailable)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPostBytes))
	if err == nil {
		var ids [][]byte
		if ids, err = eventIDs(body); err == nil {
			s.record(ids)
			w.WriteHeader(http.StatusOK)
			return
		}
	}
	s.mu.Lock()
	s.requests++
	s.bad++
	s.mu.Unlock()
	http.Error(w, err.Error(), http.StatusBadRequest)
}

func (s *sink) record(ids [][]byte) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if len(ids) == 0 {
		return
	}
	if s.first.IsZero() {
		s.first = now
	}
	s.last = now
	s.events += len(ids)
	for _, id := range ids {
		if id == nil {
			s.noID++
			continue
		}
		s.ids[string(id)] = struct{}{}
	}
}

// eventIDs checks that body is a JSON event or an array of them and
// returns each event's msgid (nil when it has none).
func eventIDs(body []byte) ([][]byte, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, errors.New("empty body")
	}
	if body[0] != '[' {
		if body[0] != '{' || !json.Valid(body) {
			return nil, errors.New("not a JSON object or array")
		}
		return [][]byte{msgID(body)}, nil
	}
	var events []json.RawMessage
	if err := json.Unmarshal(body, &events); err != nil {
		return nil, fmt.Errorf("invalid JSON array: %w", err)
	}
	ids := make([][]byte, len(events))
	for i, ev := range events {
		ids[i] = msgID(ev)
	}
	return ids, nil
}

// msgID finds the value of the first "msgid" string in an event without
// decoding it: enough for the load generator's events, which are compact
// JSON with one msgid each, and cheap, so that the sink does not take CPU
// from the system under test.
func msgID(event []byte) []byte {
	const key = `"msgid":"`
	i := bytes.Index(event, []byte(key))
	if i < 0 {
		return nil
	}
	rest := event[i+len(key):]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil
	}
	return rest[:end]
}

// connState is the sink server's http.Server.ConnState: it counts the
// connections opened, which shows whether the system keeps them alive.
func (s *sink) connState(_ net.Conn, state http.ConnState) {
	if state == http.StateNew {
		s.mu.Lock()
		s.conns++
		s.mu.Unlock()
	}
}

// stats returns the counts so far.
func (s *sink) stats() sinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	distinct := len(s.ids) + s.noID
	return sinkStats{
		Requests:   s.requests,
		Events:     s.events,
		Distinct:   distinct,
		Duplicates: s.events - distinct,
		Bad:        s.bad,
		Conns:      s.conns,
		First:      s.first,
		Last:       s.last,
	}
}

// reset forgets everything, between runs.
func (s *sink) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests, s.events, s.noID, s.bad, s.conns = 0, 0, 0, 0, 0
	s.ids = map[string]struct{}{}
	s.first, s.last = time.Time{}, time.Time{}
}

func sinkCommand(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("sink", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8091", "`host:port` to listen on; events are taken on any path")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := newSink()
	err := serve(ctx, *addr, s, s.connState)
	st := s.stats()
	fmt.Printf("sink: %d connections, %d requests, %d events (%d distinct, %d repeats), %d bad requests\n",
		st.Conns, st.Requests, st.Events, st.Distinct, st.Duplicates, st.Bad)
	return err
}
