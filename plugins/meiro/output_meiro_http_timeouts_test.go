package meiro

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/netcore-connect/netcore-connect/internal/stage"
)

// A request Meiro Events read and did not answer in time is a
// stage.TimeoutError worded with stage.TimedOut, by which the disk queue
// tells it from other failures (its place is given to no other: it may
// still be running at the server), and says the event may have arrived.
func TestMeiroHTTPGivesUpOnASlowAnswerAtItsTimeout(t *testing.T) {
	release := make(chan struct{})
	var read atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		if body, err := io.ReadAll(r.Body); err == nil && string(body) == `{}` {
			read.Add(1)
		}
		<-release
	}))
	defer srv.Close()
	defer close(release)
	out := newMeiroHTTPFor(t, "url: "+srv.URL+"\ntimeout: 100ms")
	err := returnsWithin(t, 5*time.Second, func() error { return write(out, `{}`) })
	if read.Load() != 1 {
		t.Fatalf("the server read %d whole requests, want 1: the premise, a request sent and unanswered, did not happen (%v)", read.Load(), err)
	}
	if err == nil || !strings.Contains(err.Error(), stage.TimedOut) || !strings.Contains(err.Error(), "may have arrived") {
		t.Fatalf("an answer that never came gave %v, want a timeout worded %q that says the event may have arrived", err, stage.TimedOut)
	}
	if !stage.IsTimeout(err) {
		t.Errorf("an answer that never came gave %v, not a stage.TimeoutError: the queue would not hold its place", err)
	}
}

// notSent fails the test unless err says the event was not sent: not
// stage.TimedOut, which would make the queue hold the request's place as if
// it were still running at Meiro Events, nor that the event may have arrived.
func notSent(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), "not sent") ||
		strings.Contains(err.Error(), stage.TimedOut) || strings.Contains(err.Error(), "may have arrived") || stage.IsTimeout(err) {
		t.Errorf("%s gave %v; want a connection error that says the event was not sent, not a timeout worded %q", what, err, stage.TimedOut)
	}
}

// silent is the address of a listener that accepts connections, counted,
// and holds them open without reading or writing until the test ends.
func silent(t *testing.T) (string, *atomic.Int32) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int32
	done := make(chan struct{})
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
			close(done)
		}()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			held = append(held, conn)
		}
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String(), &accepted
}

// A server that takes the connection and never answers the TLS handshake
// (a load balancer whose backends are gone) fails the request at its
// timeout; it used to hold it for ever, and with it one of max_in_flight.
// The request was never sent.
func TestMeiroHTTPGivesUpOnAStalledTLSHandshakeAtItsTimeout(t *testing.T) {
	addr, accepted := silent(t)
	out := newMeiroHTTPFor(t, "url: https://"+addr+"/collect\ntimeout: 200ms")
	err := returnsWithin(t, 5*time.Second, func() error { return write(out, `{}`) })
	if accepted.Load() == 0 || !errors.Is(err, fasthttp.ErrTLSHandshakeTimeout) {
		t.Fatalf("%d connections accepted, error %v: the premise, a handshake that timed out, did not happen", accepted.Load(), err)
	}
	notSent(t, "a handshake that never came", err)
}

// fullBacklog is the address of a listener whose queue of connections not
// yet accepted is full: a dial to it times out (Linux drops the SYN), as to
// a host that does not answer.
func fullBacklog(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	raw, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Control(func(fd uintptr) { err = syscall.Listen(int(fd), 0) }); err != nil {
		t.Fatal(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for range 8 {
		conn, err := net.DialTimeout("tcp", ln.Addr().String(), 200*time.Millisecond)
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			return ln.Addr().String()
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
	}
	t.Fatal("8 connections queued and not accepted, and the queue is still not full")
	return ""
}

// A dial that times out never sent the request.
func TestMeiroHTTPWordsADialTimeoutAsNotSent(t *testing.T) {
	out := newMeiroHTTPFor(t, "url: http://"+fullBacklog(t)+"/collect\ntimeout: 200ms")
	err := returnsWithin(t, 5*time.Second, func() error { return write(out, `{}`) })
	// fasthttp's own ErrDialTimeout, or net's, whichever deadline fired first.
	var dialErr *fasthttp.ErrDialWithUpstream
	var netErr net.Error
	if !errors.As(err, &dialErr) || !errors.Is(err, fasthttp.ErrDialTimeout) && !(errors.As(err, &netErr) && netErr.Timeout()) {
		t.Fatalf("%v: the premise, a dial that timed out, did not happen", err)
	}
	notSent(t, "a dial that timed out", err)
}

// A proxy that takes the connection and never answers its CONNECT never
// passed the request on.
func TestMeiroHTTPWordsAStalledProxyAsNotSent(t *testing.T) {
	addr, accepted := silent(t)
	setProxies(t, "http://"+addr, "")
	out := newMeiroHTTPFor(t, "url: http://meiro.example/collect\ntimeout: 200ms")
	err := returnsWithin(t, 5*time.Second, func() error { return write(out, `{}`) })
	if accepted.Load() == 0 {
		t.Fatalf("the proxy was never reached (%v): the premise did not happen", err)
	}
	notSent(t, "a proxy that never answered the CONNECT", err)
}

// With all max_in_flight connections busy, a request waits for one; if
// none is free within its timeout, it was never sent.
func TestMeiroHTTPWordsAWaitForAConnectionAsNotSent(t *testing.T) {
	reached, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		reached <- struct{}{}
		<-release
	}))
	defer srv.Close()
	defer close(release)
	out := newMeiroHTTPFor(t, "url: "+srv.URL+"\nmax_in_flight: 1\ntimeout: 300ms")
	first := make(chan error, 1)
	go func() { first <- write(out, `{}`) }()
	<-reached // the only connection is taken
	err := returnsWithin(t, 5*time.Second, func() error { return write(out, `{}`) })
	notSent(t, "a request that found no free connection", err)
	if err := <-first; err == nil || !strings.Contains(err.Error(), stage.TimedOut) {
		t.Errorf("the request on the connection, unanswered, gave %v; want a timeout worded %q", err, stage.TimedOut)
	}
}

// A request the server does not read, too big for the connection's buffers
// to take, cannot be written whole within the timeout: Meiro Events cannot
// have taken an event it did not receive whole. Over TLS too, whose
// connection keeps a failed write's error as its own.
func TestMeiroHTTPWordsARequestNotWrittenWholeAsNotSent(t *testing.T) {
	for _, overTLS := range []bool{false, true} {
		t.Run(map[bool]string{false: "http", true: "https"}[overTLS], func(t *testing.T) {
			var reached atomic.Int32
			release := make(chan struct{})
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				reached.Add(1) // the head arrived; the body is never read
				<-release
			}))
			conf := "url: %s\ntimeout: 300ms"
			if overTLS {
				srv.StartTLS()
				conf += "\ntls_root_cas_file: " + rootCAsFile(t, srv)
			} else {
				srv.Start()
			}
			defer srv.Close()
			defer close(release)
			out := newMeiroHTTPFor(t, fmt.Sprintf(conf, srv.URL))
			// Above what the sender's and receiver's buffers can take
			// together (Linux grows them to a few MiB, 32 at most).
			err := returnsWithin(t, 10*time.Second, func() error { return write(out, strings.Repeat("x", 64<<20)) })
			if reached.Load() != 1 {
				t.Fatalf("%d request heads at the server (%v), want 1: the premise, a request being written, did not happen", reached.Load(), err)
			}
			notSent(t, "a request the server did not read", err)
			if err != nil && !strings.Contains(err.Error(), "written whole") {
				t.Errorf("%v; want it to say the request could not be written whole", err)
			}
		})
	}
}

// With all max_in_flight connections busy, a request waits for one; when
// the busy one is closed instead of freed (an answer with Connection:
// close), fasthttp dials a new one for it with no time given. That dial
// still connects, as fasthttp's own would: both requests are delivered.
func TestMeiroHTTPDialsForARequestWaitingWhenAConnectionCloses(t *testing.T) {
	reached, release := make(chan struct{}, 2), make(chan struct{})
	var answered atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		reached <- struct{}{}
		<-release
		w.Header().Set("Connection", "close")
		answered.Add(1)
	}))
	defer srv.Close()
	out := newMeiroHTTPFor(t, "url: "+srv.URL+"\nmax_in_flight: 1\ntimeout: 5s")
	first := make(chan error, 1)
	go func() { first <- write(out, `{}`) }()
	<-reached // the only connection is taken
	second := make(chan error, 1)
	go func() { second <- write(out, `{}`) }()
	time.Sleep(100 * time.Millisecond) // the second waits for a connection
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("the first request: %v", err)
	}
	if err := returnsWithin(t, 10*time.Second, func() error { return <-second }); err != nil {
		t.Errorf("the request that waited for a connection gave %v, want it delivered on a new one", err)
	}
	if n := answered.Load(); n != 2 {
		t.Errorf("the server answered %d requests, want 2", n)
	}
}
