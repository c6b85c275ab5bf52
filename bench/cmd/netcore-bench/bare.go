package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
)

// bareServer is the parse ceiling: the least any receiver of Netcore posts
// must do with net/http, url.ParseQuery and encoding/json. It decodes each
// post into panels and events, counts them and answers 200; nothing is kept,
// so it bounds what a durable receiver can hope for.
type bareServer struct {
	events atomic.Int64
}

// maxPostBytes matches netcore-connect's default max_body_bytes.
const maxPostBytes = 10 << 20

func (s *bareServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPostBytes))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "invalid form: "+err.Error(), http.StatusBadRequest)
		return
	}
	var panels map[string][]json.RawMessage
	if err := json.Unmarshal([]byte(form.Get("data")), &panels); err != nil {
		http.Error(w, "invalid data: "+err.Error(), http.StatusBadRequest)
		return
	}
	n := 0
	for _, events := range panels {
		n += len(events)
	}
	s.events.Add(int64(n))
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"status":"ok","events":%d}`, n)
}

func bareServerCommand(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bare-server", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:8090", "`host:port` to listen on; posts are taken on any path")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s := &bareServer{}
	err := serve(ctx, *addr, s, nil)
	fmt.Printf("bare-server: %d events received\n", s.events.Load())
	return err
}
