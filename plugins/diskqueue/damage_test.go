package diskqueue

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Every page (16 KiB) of a queue file holding events is garbled in turn, as a
// failing disk might. Each time, the queue must either refuse to open with
// an error that names the file, or open and hand out only intact events
// (checked by their content), never panic and never hang.
func TestQueueSurvivesAGarbledPageAnywhere(t *testing.T) {
	c := testConfig(t)
	q, err := openQueue(c)
	if err != nil {
		t.Fatal(err)
	}
	const events = 300
	for i := range events / 10 {
		var bodies, ids []string
		for j := range 10 {
			n := i*10 + j
			bodies = append(bodies, fmt.Sprintf(`{"n":%d,"pad":"%s"}`, n, strings.Repeat(fmt.Sprint(n%10), 200)))
			ids = append(ids, fmt.Sprint("id-", n))
		}
		if err := store(t, q, bodies, ids); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	pristine, err := os.ReadFile(c.path)
	if err != nil {
		t.Fatal(err)
	}
	const pageSize = 16 << 10 // as openDB creates files
	refused, opened := 0, 0
	for page := range len(pristine) / pageSize {
		garbled := append([]byte(nil), pristine...)
		rnd := rand.New(rand.NewPCG(uint64(page), 7))
		for i := page * pageSize; i < (page+1)*pageSize; i++ {
			garbled[i] = byte(rnd.IntN(256))
		}
		pc := c
		pc.path = filepath.Join(t.TempDir(), "events.db")
		if err := os.WriteFile(pc.path, garbled, 0o600); err != nil {
			t.Fatal(err)
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("page %d garbled: panic %v", page, r)
				}
			}()
			pq, err := openQueue(pc)
			if err != nil {
				if !strings.Contains(err.Error(), pc.path) {
					t.Errorf("page %d garbled: error %v does not name the file", page, err)
				}
				refused++
				return
			}
			opened++
			defer pq.close(context.Background())
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				l, err := pq.next(ctx)
				cancel()
				if err != nil {
					return // drained
				}
				body, _ := l.msg.AsBytes()
				var n int
				if _, err := fmt.Sscanf(string(body), `{"n":%d,`, &n); err != nil || !strings.Contains(string(body), strings.Repeat(fmt.Sprint(n%10), 200)) {
					t.Errorf("page %d garbled: a damaged event was handed out: %.80s", page, body)
				}
				pq.ack(l, nil)
			}
		}()
	}
	t.Logf("%d pages garbled one at a time: %d refused at open with the file named, %d opened and delivered only intact events", len(pristine)/pageSize, refused, opened)
}
