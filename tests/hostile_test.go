package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawRequest writes req as is on a new connection and returns the status
// line of the answer.
func rawRequest(t *testing.T, addr, req string) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		return "write failed: " + err.Error()
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return "read failed: " + err.Error()
	}
	return strings.TrimSpace(line)
}

func webhookAddr(p *process) string {
	u, _ := url.Parse(p.webhook)
	return u.Host
}

func TestHostileRequestsAreRefusedCleanly(t *testing.T) {
	m := newMeiro(t)
	p := startProcess(t, options{env: m.env()})
	addr := webhookAddr(p)

	smuggled := "POST /netcore HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" +
		"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
	if got := rawRequest(t, addr, smuggled); !strings.Contains(got, " 400 ") {
		t.Errorf("Content-Length with Transfer-Encoding: %q, want 400", got)
	}
	flood := "POST /netcore HTTP/1.1\r\nHost: x\r\nX-Flood: " + strings.Repeat("a", 1<<20) + "\r\n\r\n"
	if got := rawRequest(t, addr, flood); !strings.Contains(got, " 431 ") && !strings.Contains(got, "failed") {
		t.Errorf("a 1 MiB header: %q, want 431 or a closed connection", got)
	}

	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"100k nested arrays", `{"p":[{"x":` + strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000) + `}]}`, 400},
		{"a million tiny events", `{"p":[` + strings.Repeat("{},", 999_999) + `{}]}`, 413},
		{"NUL bytes", "{\"p\":[{\"a\u0000\":\"b\x00\"}]}", 400},
		{"escaped NUL", `{"p":[{"a\u0000":"\u0000"}]}`, 200},
		{"a 100 KB key", `{"p":[{"` + strings.Repeat("k", 100_000) + `":1}]}`, 200},
		{"invalid UTF-8", "{\"p\":[{\"a\":\"\xc3\x28\"}]}", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, err := postJSON(p.webhook, []byte(tt.body))
			if err != nil || status != tt.status {
				t.Errorf("got %d %v, want %d", status, err, tt.status)
			}
		})
	}
	// Still serving.
	if status, err := postJSON(p.webhook, []byte(`{"p":[{"after":"all that"}]}`)); err != nil || status != http.StatusOK {
		t.Fatalf("after hostile input: %d %v", status, err)
	}
}

// Hundreds of clients that trickle their headers in a byte at a time must
// neither hold real posts back nor stay connected past read_header_timeout.
func TestSlowlorisNeitherStarvesPostsNorStaysConnected(t *testing.T) {
	m := newMeiro(t)
	p := startProcess(t, options{env: m.env()})
	addr := webhookAddr(p)

	const slow = 300
	var cut sync.WaitGroup
	connectedFor := make(chan time.Duration, slow)
	stop := make(chan struct{})
	defer close(stop)
	for range slow {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("slow client: %v", err)
		}
		cut.Add(1)
		go func() {
			defer cut.Done()
			defer conn.Close()
			start := time.Now()
			header := "POST /netcore HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 10_000)
			for i := 0; i < len(header); i++ {
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
				_ = conn.SetWriteDeadline(time.Now().Add(time.Second))
				if _, err := conn.Write([]byte{header[i]}); err != nil {
					break
				}
			}
			// The server closed the connection: reading ends.
			_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
			_, _ = io.Copy(io.Discard, conn)
			connectedFor <- time.Since(start)
		}()
	}

	time.Sleep(time.Second)
	for i := range 20 {
		start := time.Now()
		body, _ := markedBody(fmt.Sprintf("real-%d", i), 3)
		status, err := postJSON(p.webhook, body)
		if err != nil || status != http.StatusOK {
			t.Fatalf("real post %d during slowloris: %d %v", i, status, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("real post %d took %s during slowloris, want under 2s", i, d)
		}
	}
	done := make(chan struct{})
	go func() { cut.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(40 * time.Second):
		t.Fatal("slow clients still connected after 40s")
	}
	close(connectedFor)
	var longest time.Duration
	for d := range connectedFor {
		longest = max(longest, d)
	}
	if longest > 10*time.Second {
		t.Errorf("a slow client stayed connected %s, want it cut after read_header_timeout (5s)", longest)
	}
	t.Logf("%d slow clients, longest connected %s; 20 real posts each under 2s", slow, longest.Round(time.Millisecond))
}

// Credentials for Meiro Events go in a header (docs/security.md says why not in
// the URL: Benthos logs the URL of a failed delivery); they must not leak.
func TestMeiroEventsCredentialsAreNotLogged(t *testing.T) {
	m := newMeiro(t)
	var seen sync.Once
	gotAuth := make(chan string, 1)
	m.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Do(func() { gotAuth <- r.Header.Get("Authorization") })
		w.WriteHeader(http.StatusUnauthorized)
	})
	p := startProcess(t, options{env: m.env(), set: []string{"output.meiro_events.headers.Authorization=Bearer s3cr3t-token"}})
	if status, err := postJSON(p.webhook, []byte(`{"p":[{"a":1}]}`)); err != nil || status != http.StatusOK {
		t.Fatalf("post: %d %v", status, err)
	}
	select {
	case auth := <-gotAuth:
		if auth != "Bearer s3cr3t-token" {
			t.Fatalf("Meiro Events got Authorization %q", auth)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery attempt")
	}
	waitFor(t, "a failed delivery to be logged", 10*time.Second, func() bool {
		return strings.Contains(p.stdout.String()+p.stderr.String(), "401")
	})
	if logs := p.stdout.String() + p.stderr.String(); strings.Contains(logs, "s3cr3t-token") {
		t.Errorf("the Meiro Events token is in the logs:\n%s", logs)
	}
}

func TestRejectedBodiesAreLoggedWithASizeCap(t *testing.T) {
	m := newMeiro(t)
	p := startProcess(t, options{env: m.env()})
	secret := strings.Repeat("x", 5000) + "TAIL-NOT-LOGGED"
	if status, _ := postJSON(p.webhook, []byte(`{"p":[`+secret)); status != http.StatusBadRequest {
		t.Fatalf("got %d, want 400", status)
	}
	waitFor(t, "the rejection logged", 5*time.Second, func() bool { return strings.Contains(p.stdout.String(), "rejected") })
	if logs := p.stdout.String(); strings.Contains(logs, "TAIL-NOT-LOGGED") || !strings.Contains(logs, "xxxx") {
		t.Errorf("want an excerpt of the rejected body, capped, in the logs:\n%.2000s", logs)
	}
	kept := readFile(t, p.dataDir+"/rejected/posts.jsonl")
	if !bytes.Contains(kept, []byte("TAIL-NOT-LOGGED")) {
		t.Error("the whole rejected body is not kept in the rejected posts file")
	}
}
