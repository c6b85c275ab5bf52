// Package pgtest starts a throwaway PostgreSQL server for tests: a new
// cluster in a temporary folder, listening on a free loopback port and on a
// socket in that folder, removed when the test ends.
//
// It runs the server binaries of the machine's PostgreSQL (Debian's packages
// put them in /usr/lib/postgresql/VERSION/bin; `.ci/run` installs them). The
// server refuses to run as root, so when the test runs as root the cluster
// is owned by and run as the user `nobody`. StartTLS starts one that takes
// verified TLS connections only (tls.go). Without the binaries a test is
// skipped, except in CI (CI=true), where it fails: CI must test for real.
package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/testing/testkit"

	"github.com/jackc/pgx/v5"
)

// binGlob is where Debian's packages put the server binaries, one folder
// per major version.
const binGlob = "/usr/lib/postgresql/*/bin"

// Server is a running throwaway PostgreSQL server.
type Server struct {
	// DSN connects to the server over TCP on loopback as the superuser
	// postgres, to its database postgres.
	DSN string
	// CAFile is the CA that signed the server's certificate (StartTLS).
	CAFile string

	t       testing.TB
	bin     string // folder of initdb and postgres
	dir     string // the cluster's folder, owned by the user it runs as
	port    int
	cred    *syscall.Credential // nil: run as ourselves
	log     *testkit.SyncBuffer
	cmd     *exec.Cmd
	stopped chan struct{}
}

// Start creates a cluster and starts its server. The server and its folder
// are removed when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, nil)
}

// start creates a cluster, lets configure change it, and starts its server.
func start(t testing.TB, configure func(*Server)) *Server {
	t.Helper()
	bin := binDir(t)
	cred, err := unprivileged()
	if err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// MkdirTemp makes the folder 0700 for us; the server's user must own it.
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	s := &Server{t: t, bin: bin, dir: dir, port: freePort(t), cred: cred, log: &testkit.SyncBuffer{}}
	s.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
	s.run("initdb", "-D", s.dataDir(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync")
	if configure != nil {
		configure(s)
	}
	s.Restart()
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("postgres log:\n%s", s.log.String())
		}
	})
	return s
}

// binDir finds the newest PostgreSQL's server binaries, or skips the test
// (fails it in CI) when there are none.
func binDir(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob(binGlob)
	var found []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			found = append(found, d)
		}
	}
	if len(found) == 0 {
		msg := "no PostgreSQL server binaries (" + binGlob + "/initdb): install Debian's postgresql package, as .ci/run does"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	// Newest major version last ("9.6" < "15": compare as numbers).
	sort.Slice(found, func(i, j int) bool { return majorVersion(found[i]) < majorVersion(found[j]) })
	return found[len(found)-1]
}

func majorVersion(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// unprivileged is the user to run the server as: nobody when we are root,
// ourselves (nil) otherwise.
func unprivileged() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("nobody")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root and there is no user nobody to run it as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	// No supplementary groups: none of root's are kept.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func (s *Server) dataDir() string { return filepath.Join(s.dir, "data") }

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = s.log, s.log
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	return cmd
}

// run runs a PostgreSQL program to its end.
func (s *Server) run(name string, args ...string) {
	s.t.Helper()
	if err := s.command(name, args...).Run(); err != nil {
		s.t.Fatalf("%s: %v\n%s", name, err, s.log.String())
	}
}

// Restart starts the server (after Stop or Crash) and waits until it takes
// connections; it recovers from a crash first, as after a power cut.
func (s *Server) Restart() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatal("pgtest: the server is already running")
	}
	s.cmd = s.command("postgres", "-D", s.dataDir(), "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+s.dir)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting postgres: %v", err)
	}
	s.stopped = make(chan struct{})
	go func(cmd *exec.Cmd, stopped chan struct{}) { _ = cmd.Wait(); close(stopped) }(s.cmd, s.stopped)
	s.waitReady()
}

func (s *Server) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.DSN)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		cancel()
		if err == nil {
			return
		}
		select {
		case <-s.stopped:
			s.t.Fatalf("postgres exited at start:\n%s", s.log.String())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("postgres not ready after 60s: %v\n%s", err, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down cleanly (fast shutdown: sessions are ended,
// what was committed is checkpointed). Stopping a stopped server does
// nothing.
func (s *Server) Stop() { s.signal(syscall.SIGINT) }

// Crash ends the server at once, without a checkpoint (immediate
// shutdown): the next start recovers from the write-ahead log, as after a
// crash. Only what was committed survives.
func (s *Server) Crash() { s.signal(syscall.SIGQUIT) }

func (s *Server) signal(sig syscall.Signal) {
	s.t.Helper()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.stopped:
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.stopped
		s.t.Errorf("postgres did not stop within 60s of %v", sig)
	}
	s.cmd = nil
}

// Conn is a connection to the server, closed when the test ends.
func (s *Server) Conn(ctx context.Context) *pgx.Conn {
	s.t.Helper()
	conn, err := pgx.Connect(ctx, s.DSN)
	if err != nil {
		s.t.Fatalf("connecting to postgres: %v", err)
	}
	s.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// CPUTime is the processor time the server has used so far: the postmaster
// and its processes (connections, WAL writer, checkpointer), user and
// system, from /proc (Linux), in clock ticks of 10ms. For comparing costs on
// a machine too busy for wall-clock times to mean much.
func (s *Server) CPUTime() time.Duration {
	s.t.Helper()
	if s.cmd == nil {
		s.t.Fatal("pgtest: the server is not running")
	}
	root := s.cmd.Process.Pid
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var ticks int64
	for _, path := range stats {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // the process ended meanwhile
		}
		pid, ppid, cpu, ok := parseStat(b)
		if ok && (pid == root || ppid == root) {
			ticks += cpu
		}
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// parseStat reads pid, ppid and utime+stime from /proc/PID/stat. The
// command name, in parentheses, may hold spaces: fields are counted from
// after its closing parenthesis.
func parseStat(b []byte) (pid, ppid int, cpu int64, ok bool) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return 0, 0, 0, false
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return 0, 0, 0, false
	}
	// After ")": state ppid pgrp session tty_nr tpgid flags minflt cminflt
	// majflt cmajflt utime stime ...
	f := bytes.Fields(b[end+1:])
	if len(f) < 13 {
		return 0, 0, 0, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	utime, err2 := strconv.ParseInt(string(f[11]), 10, 64)
	stime, err3 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, 0, false
	}
	return pid, ppid, utime + stime, true
}
