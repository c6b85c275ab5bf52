package netcore

import (
	"fmt"
	"net/http"
)

// The URL check: senders check a URL when it is saved, with a HEAD, a GET
// or an empty post; each is answered 200 and nothing is stored (the empty
// post is netcorepost.EmptyPost's).

// urlCheckText answers a GET on the webhook path: what it is, and nothing
// of how it is configured.
const urlCheckText = "This is a Netcore webhook receiver: Netcore POSTs its webhooks to this URL.\n"

// urlCheckRequest says r is a HEAD or GET with no body, what senders use on
// the webhook path to check a URL when it is saved. It needs no token:
// nothing is stored. One with a body is not a URL check, since answering it
// 200 would drop the body.
func urlCheckRequest(r *http.Request) bool {
	return (r.Method == http.MethodHead || r.Method == http.MethodGet) &&
		r.ContentLength == 0 && len(r.TransferEncoding) == 0
}

// urlCheck answers a HEAD or GET on the webhook path with 200.
func (w *webhookInput) urlCheck(r *http.Request) (answer, bool) {
	if r.URL.Path != w.conf.path || !urlCheckRequest(r) {
		return answer{}, false
	}
	return answer{status: http.StatusOK, urlCheck: true, reason: fmt.Sprintf("URL check (%s): answered 200, nothing stored", r.Method)}, true
}
