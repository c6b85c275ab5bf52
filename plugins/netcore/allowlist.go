package netcore

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/netcore-connect/netcore-connect/internal/plugkit"
)

// addressSet is a set of IP prefixes: the allowlist of senders, or the
// proxies whose X-Forwarded-For is believed. IPv4-mapped IPv6 addresses
// (::ffff:1.2.3.4) are matched as the IPv4 address they carry, so a
// dual-stack listener cannot be used to slip past an IPv4 entry.
type addressSet []netip.Prefix

// parseAddressSet reads entries that are IP addresses or CIDR prefixes, v4 or
// v6. Each entry may itself hold several separated by commas, so that one
// environment variable can fill the whole list.
func parseAddressSet(entries []string) (addressSet, error) {
	var set addressSet
	for _, item := range plugkit.SplitList(entries) {
		prefix, err := parsePrefix(item)
		if err != nil {
			return nil, err
		}
		set = append(set, prefix)
	}
	return set, nil
}

func parsePrefix(item string) (netip.Prefix, error) {
	if strings.Contains(item, "/") {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix: %w", item, err)
		}
		if p.Addr().Is4In6() {
			bits := p.Bits() - 96
			if bits < 0 {
				return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix needs at least 96 bits", item)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), bits)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(item)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix: %w", item, err)
	}
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (s addressSet) contains(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range s {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

var errNoClientAddress = errors.New("client address cannot be determined")

// clientAddress is the address a request comes from: the socket peer, unless
// the peer is a trusted proxy, in which case the X-Forwarded-For chain is read
// from the right, skipping trusted proxies, and the first address that is not
// one is the client. Entries added left of that by anyone else are never
// believed, so a sender cannot forge its way in. Forwarded (RFC 7239) and
// other headers are ignored.
func clientAddress(r *http.Request, trusted addressSet) (netip.Addr, error) {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%w: peer %q: %w", errNoClientAddress, r.RemoteAddr, err)
	}
	client := peer.Addr().Unmap().WithZone("")
	if !trusted.contains(client) {
		return client, nil
	}
	hops := forwardedFor(r.Header)
	for i := len(hops) - 1; i >= 0; i-- {
		hop, err := parseHop(hops[i])
		if err != nil {
			return netip.Addr{}, fmt.Errorf("%w: X-Forwarded-For entry %q is not an IP address", errNoClientAddress, hops[i])
		}
		client = hop.Unmap().WithZone("")
		if !trusted.contains(client) {
			return client, nil
		}
	}
	return client, nil
}

// parseHop reads one X-Forwarded-For entry; some proxies append the port.
func parseHop(hop string) (netip.Addr, error) {
	if a, err := netip.ParseAddr(hop); err == nil {
		return a, nil
	}
	ap, err := netip.ParseAddrPort(hop)
	return ap.Addr(), err
}

// forwardedFor lists the X-Forwarded-For hops, left to right, across every
// copy of the header.
func forwardedFor(h http.Header) []string {
	var hops []string
	for _, line := range h.Values("X-Forwarded-For") {
		for hop := range strings.SplitSeq(line, ",") {
			if hop = strings.TrimSpace(hop); hop != "" {
				hops = append(hops, hop)
			}
		}
	}
	return hops
}

// CheckAddressList reports whether list, IPs and CIDR prefixes separated by
// commas, would be accepted by allowed_ips and trusted_proxies, so that a bad
// environment variable can be named before the config is read.
func CheckAddressList(list string) error {
	_, err := parseAddressSet([]string{list})
	return err
}
