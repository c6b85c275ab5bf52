package netcore

import (
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/netcore-connect/netcore-connect/internal/inspector"
	"github.com/netcore-connect/netcore-connect/internal/quarantine"
)

// The inspector (internal/inspector) is a page of its own, served beside
// the receiver when inspect.address is set. It learns of each request from
// the receiver (record) and asks it only who may open the page: the gate.

// newInspector is the inspector of keep posts, mask masked, open to
// loopback peers that are not trusted proxies and to the clients allowed to
// post (through trusted proxies, as for posts); quarantined is what the
// quarantine holds, nil without one.
func newInspector(keep int, mask inspector.Mask, allowed, trusted addressSet, quarantined func() []quarantine.Client) *inspector.Inspector {
	return inspector.New(inspector.Config{Keep: keep, Mask: mask, Gate: inspectorGate{allowed: allowed, trusted: trusted}, Quarantined: quarantined})
}

// inspectorGate is the receiver's allowlist and trusted proxies, as the
// inspector asks them.
type inspectorGate struct{ allowed, trusted addressSet }

func (g inspectorGate) TrustedProxy(a netip.Addr) bool { return g.trusted.contains(a) }

func (g inspectorGate) Allowed(r *http.Request) bool {
	client, err := clientAddress(r, g.trusted)
	return err == nil && g.allowed.contains(client)
}

// inspected is what the inspector is told of a request.
func inspected(requestID string, received time.Time, client netip.Addr, a answer) inspector.Request {
	return inspector.Request{ID: requestID, Received: received, Client: client, Status: a.status, Reason: a.reason,
		Bytes: a.bodyBytes, Post: a.post, Body: a.body, Quarantined: a.quarantined}
}

// CheckMaskFields reports whether list, field names and paths separated by
// commas, would be accepted by the inspector's mask_fields, so that a bad
// environment variable can be named before the config is read.
func CheckMaskFields(list string) error {
	rules, err := inspector.ParseMask([]string{list})
	if err == nil && len(rules) == 0 {
		err = errNoMaskFields
	}
	return err
}

var errNoMaskFields = fmt.Errorf("no field named: list the fields to mask, or turn %s off to show everything", wiFieldInspectMask)
