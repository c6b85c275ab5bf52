package netcore

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/netcore-connect/netcore-connect/internal/inspector"
	"github.com/netcore-connect/netcore-connect/internal/netcorepost"
)

// The inspector as the webhook makes it: open to loopback peers that are
// not trusted proxies, and to allowlisted clients found through them.

func TestInspectorKeepsTheLatestAndMasksPersonalFields(t *testing.T) {
	in := newInspector(3, defaultMask(t), nil, mustAddressSet(t, "10.0.0.0/8"), nil)
	for i := range 5 {
		post, err := netcorepost.DecodeData([]byte(fmt.Sprintf(`{"p%d":[{"event_params":{"identity":"a@example.com","ts":240301101500,"big":12345678901234567890},"att_params":{"MOBILE":"919800000001"}}]}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		in.Add(inspector.Request{ID: fmt.Sprint("req", i), Status: 200, Post: post})
	}
	latest := in.Latest()
	if len(latest) != 3 || latest[0].RequestID != "req4" || latest[2].RequestID != "req2" {
		t.Fatalf("kept %v, want req4, req3, req2", latest)
	}
	get := func(path string) string {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.RemoteAddr, r.Host = "127.0.0.1:5000", "127.0.0.1:8081"
		in.ServeHTTP(rec, r)
		return rec.Body.String()
	}
	page := get("/posts/req4")
	for _, leaked := range []string{"a@example.com", "919800000001"} {
		if strings.Contains(page, leaked) {
			t.Errorf("%s shown unmasked", leaked)
		}
	}
	if !strings.Contains(page, "12345678901234567890") || !strings.Contains(page, "•••") {
		t.Errorf("want the event, numbers exact, personal fields masked:\n%s", page)
	}
	if got := get("/posts/req0"); !strings.Contains(got, "no such post") {
		t.Errorf("a post pushed out is still shown: %s", got)
	}

	refused := []struct{ name, remote, host, xff string }{
		{"neither loopback nor allowlisted", "203.0.113.9:5000", "203.0.113.1:8081", ""},
		{"loopback claimed through a trusted proxy", "10.0.0.2:5000", "10.0.0.1:8081", "127.0.0.1"},
		{"a name as Host (DNS rebinding)", "127.0.0.1:5000", "evil.example:8081", ""},
	}
	for _, c := range refused {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr, r.Host = c.remote, c.host
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		in.ServeHTTP(rec, r)
		if rec.Code != http.StatusForbidden {
			t.Errorf("%s: got %d, want 403", c.name, rec.Code)
		}
	}
}

func TestInspectorBehindAProxyOnTheSameHost(t *testing.T) {
	in := newInspector(3, defaultMask(t), mustAddressSet(t, "198.51.100.0/24"), mustAddressSet(t, "127.0.0.1"), nil)
	for xff, want := range map[string]int{"203.0.113.9": http.StatusForbidden, "198.51.100.7": http.StatusOK} {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr, r.Host = "127.0.0.1:5000", "192.0.2.1"
		r.Header.Set("X-Forwarded-For", xff)
		in.ServeHTTP(rec, r)
		if rec.Code != want {
			t.Errorf("client %s through a local proxy: got %d, want %d", xff, rec.Code, want)
		}
	}
}

// defaultMask is the inspector's default mask_fields.
func defaultMask(t testing.TB) inspector.Mask {
	t.Helper()
	rules, err := inspector.ParseMask(inspector.DefaultMaskFields)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}
