package pgtest

import (
	"context"
	"os"
	"testing"
	"time"
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
