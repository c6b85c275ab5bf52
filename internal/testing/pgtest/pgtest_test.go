package pgtest

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A committed row survives a crash of the server, and the cluster's folder
// is gone once the test is over.
func TestCommittedRowsSurviveACrash(t *testing.T) {
	var dir string
	t.Run("server", func(t *testing.T) {
		s := Start(t)
		dir = s.dir
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		conn := s.Conn(ctx)
		if _, err := conn.Exec(ctx, `create table t (v text); insert into t values ('kept')`); err != nil {
			t.Fatal(err)
		}
		s.Crash()
		s.Restart()
		var v string
		if err := s.Conn(ctx).QueryRow(ctx, `select v from t`).Scan(&v); err != nil || v != "kept" {
			t.Fatalf("after the crash: %q, %v; want the row kept", v, err)
		}
	})
	if dir == "" {
		t.Fatal("the server did not start")
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s left behind after the test (%v)", dir, err)
	}
}

// The TLS server takes verified TLS connections only.
func TestTLSServerTakesVerifiedTLSOnly(t *testing.T) {
	s := StartTLS(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ssl bool
	if err := s.Conn(ctx).QueryRow(ctx, `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl); err != nil || !ssl {
		t.Fatalf("connection over TLS: %v, %v", ssl, err)
	}
	plain := strings.Replace(s.DSN, "sslmode=verify-full", "sslmode=disable", 1)
	if c, err := pgx.Connect(ctx, plain); err == nil {
		c.Close(ctx)
		t.Error("a connection without TLS was taken")
	}
	other, _, _, err := newCertificates()
	if err != nil {
		t.Fatal(err)
	}
	otherCA := filepath.Join(t.TempDir(), "other-ca.pem")
	if err := os.WriteFile(otherCA, other, 0o644); err != nil {
		t.Fatal(err)
	}
	if c, err := pgx.Connect(ctx, strings.Replace(s.DSN, s.CAFile, otherCA, 1)); err == nil {
		c.Close(ctx)
		t.Error("the server's certificate was taken with another CA")
	}
}
