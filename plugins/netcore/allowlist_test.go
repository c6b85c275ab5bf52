package netcore

import (
	"errors"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustAddressSet(t *testing.T, entries ...string) addressSet {
	t.Helper()
	set, err := parseAddressSet(entries)
	if err != nil {
		t.Fatalf("parseAddressSet(%q): %v", entries, err)
	}
	return set
}

func TestParseAddressSet(t *testing.T) {
	tests := []struct {
		name    string
		entries []string
		want    []string // prefixes, or nil
		err     string   // part of the error, when one is expected
	}{
		{name: "none", entries: nil},
		{name: "only separators", entries: []string{"", " , ,"}},
		{name: "IPv4 address", entries: []string{"10.0.0.1"}, want: []string{"10.0.0.1/32"}},
		{name: "IPv6 address", entries: []string{"2001:db8::1"}, want: []string{"2001:db8::1/128"}},
		{name: "IPv4 CIDR masked", entries: []string{"10.1.2.3/8"}, want: []string{"10.0.0.0/8"}},
		{name: "IPv6 CIDR", entries: []string{"2001:db8::/32"}, want: []string{"2001:db8::/32"}},
		{
			name:    "comma separated with spaces and empty items",
			entries: []string{" 10.0.0.1 , ,192.168.0.0/16,", "", "::1 "},
			want:    []string{"10.0.0.1/32", "192.168.0.0/16", "::1/128"},
		},
		{name: "IPv4-mapped address", entries: []string{"::ffff:1.2.3.4"}, want: []string{"1.2.3.4/32"}},
		{name: "IPv4-mapped prefix", entries: []string{"::ffff:10.0.0.0/104"}, want: []string{"10.0.0.0/8"}},
		{name: "IPv6 zone dropped", entries: []string{"fe80::1%eth0"}, want: []string{"fe80::1/128"}},
		{name: "invalid item among valid ones", entries: []string{"10.0.0.1, bogus"}, err: `"bogus" is not an IP address or CIDR prefix`},
		{name: "invalid in a later element", entries: []string{"10.0.0.1", "300.1.1.1"}, err: `"300.1.1.1"`},
		{name: "prefix too long", entries: []string{"10.0.0.0/33"}, err: `"10.0.0.0/33"`},
		{name: "address with port", entries: []string{"1.2.3.4:80"}, err: `"1.2.3.4:80"`},
		{name: "hostname", entries: []string{"example.com"}, err: `"example.com"`},
		{name: "IPv4-mapped prefix too short", entries: []string{"::ffff:0.0.0.0/95"}, err: `"::ffff:0.0.0.0/95": an IPv4-mapped prefix needs at least 96 bits`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := parseAddressSet(tt.entries)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error = %v, want one containing %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range set {
				got = append(got, p.String())
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAddressSetContains(t *testing.T) {
	tests := []struct {
		entries string
		addr    string
		want    bool
	}{
		{"10.0.0.0/8", "10.255.0.1", true},
		{"10.0.0.0/8", "11.0.0.1", false},
		{"10.0.0.1", "10.0.0.2", false},
		{"127.0.0.1", "::ffff:127.0.0.1", true},
		{"10.0.0.0/8", "::ffff:10.9.9.9", true},
		{"::ffff:10.0.0.0/104", "10.2.3.4", true},
		{"::ffff:10.0.0.0/104", "::ffff:10.2.3.4", true},
		{"::ffff:10.0.0.0/104", "11.0.0.1", false},
		{"::ffff:10.0.0.0/104", "::ffff:11.0.0.1", false},
		{"::ffff:127.0.0.1", "127.0.0.1", true},
		{"2001:db8::/32", "2001:db8:1::5", true},
		{"2001:db8::/32", "2001:db9::", false},
		{"::1", "::1", true},
		{"::1", "127.0.0.1", false},
		{"fe80::1", "fe80::1%eth0", true},
		{"10.0.0.1, 2001:db8::1", "2001:db8::1", true},
		{"", "10.0.0.1", false},
	}
	for _, tt := range tests {
		set := mustAddressSet(t, tt.entries)
		if got := set.contains(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("[%s].contains(%s) = %v, want %v", tt.entries, tt.addr, got, tt.want)
		}
	}
}

func TestClientAddress(t *testing.T) {
	tests := []struct {
		name    string
		remote  string
		xff     []string // X-Forwarded-For header lines
		fwd     string   // a Forwarded (RFC 7239) header, never believed
		trusted string
		want    string
		err     string
	}{
		{name: "no proxies trusted", remote: "203.0.113.5:4000", xff: []string{"10.0.0.1"}, want: "203.0.113.5"},
		{name: "untrusted peer cannot forge", remote: "203.0.113.5:4000", xff: []string{"198.51.100.7"}, trusted: "10.0.0.0/8", want: "203.0.113.5"},
		{name: "trusted peer without header", remote: "10.0.0.2:80", trusted: "10.0.0.0/8", want: "10.0.0.2"},
		{name: "trusted peer", remote: "10.0.0.2:80", xff: []string{"198.51.100.7"}, trusted: "10.0.0.0/8", want: "198.51.100.7"},
		{name: "client then trusted proxy", remote: "10.0.0.2:80", xff: []string{"198.51.100.7, 10.0.0.3"}, trusted: "10.0.0.0/8", want: "198.51.100.7"},
		{name: "prepended entry not believed", remote: "10.0.0.2:80", xff: []string{"6.6.6.6, 198.51.100.7, 10.0.0.3"}, trusted: "10.0.0.0/8", want: "198.51.100.7"},
		{name: "prepended garbage not read", remote: "10.0.0.2:80", xff: []string{"not-an-ip, 198.51.100.7"}, trusted: "10.0.0.0/8", want: "198.51.100.7"},
		{name: "untrusted hop ends the walk", remote: "10.0.0.2:80", xff: []string{"10.0.0.9, 198.51.100.7, 10.0.0.3"}, trusted: "10.0.0.0/8", want: "198.51.100.7"},
		{name: "several header lines", remote: "10.0.0.2:80", xff: []string{"6.6.6.6, 198.51.100.7", "10.0.0.3"}, trusted: "10.0.0.0/8", want: "198.51.100.7"},
		{name: "last header line is rightmost", remote: "10.0.0.2:80", xff: []string{"198.51.100.1", "198.51.100.2"}, trusted: "10.0.0.0/8", want: "198.51.100.2"},
		{name: "empty hops skipped", remote: "10.0.0.2:80", xff: []string{" , 198.51.100.7 ,, ", ""}, trusted: "10.0.0.0/8", want: "198.51.100.7"},
		{name: "entry with a port", remote: "10.0.0.2:80", xff: []string{"1.2.3.4:5678"}, trusted: "10.0.0.0/8", want: "1.2.3.4"},
		{name: "IPv6 entry with a port", remote: "10.0.0.2:80", xff: []string{"[2001:db8::7]:443"}, trusted: "10.0.0.0/8", want: "2001:db8::7"},
		{name: "IPv4-mapped hop trusted as IPv4", remote: "10.0.0.2:80", xff: []string{"198.51.100.7, ::ffff:10.0.0.3"}, trusted: "10.0.0.0/8", want: "198.51.100.7"},
		{name: "IPv4-mapped client unmapped", remote: "10.0.0.2:80", xff: []string{"::ffff:198.51.100.7"}, trusted: "10.0.0.0/8", want: "198.51.100.7"},
		{name: "all hops trusted gives leftmost", remote: "10.0.0.2:80", xff: []string{"10.0.0.5, 10.0.0.6"}, trusted: "10.0.0.0/8", want: "10.0.0.5"},
		{name: "malformed entry from trusted peer", remote: "10.0.0.2:80", xff: []string{"198.51.100.7, garbage"}, trusted: "10.0.0.0/8", err: `X-Forwarded-For entry "garbage" is not an IP address`},
		{name: "malformed entry behind trusted proxy", remote: "10.0.0.2:80", xff: []string{"1.2.3.4:x, 10.0.0.3"}, trusted: "10.0.0.0/8", err: `"1.2.3.4:x"`},
		{name: "IPv6 peer", remote: "[::1]:1234", xff: []string{"198.51.100.7"}, want: "::1"},
		{name: "trusted IPv6 peer", remote: "[::1]:1234", xff: []string{"2001:db8::9"}, trusted: "::1", want: "2001:db8::9"},
		{name: "IPv6 peer with zone", remote: "[fe80::1%eth0]:1234", want: "fe80::1"},
		{name: "IPv4-mapped peer unmapped", remote: "[::ffff:203.0.113.5]:4000", xff: []string{"198.51.100.7"}, trusted: "10.0.0.0/8", want: "203.0.113.5"},
		{name: "IPv4-mapped peer trusted by IPv4 entry", remote: "[::ffff:127.0.0.1]:4000", xff: []string{"198.51.100.7"}, trusted: "127.0.0.1", want: "198.51.100.7"},
		{name: "IPv4 peer trusted by mapped prefix", remote: "10.0.0.2:80", xff: []string{"198.51.100.7"}, trusted: "::ffff:10.0.0.0/104", want: "198.51.100.7"},
		{name: "peer without port", remote: "203.0.113.5", err: `peer "203.0.113.5"`},
		{name: "Forwarded from an untrusted peer ignored", remote: "203.0.113.5:4000", fwd: "for=198.51.100.7", want: "203.0.113.5"},
		{name: "Forwarded from a trusted peer ignored too", remote: "10.0.0.2:80", fwd: "for=198.51.100.7", trusted: "10.0.0.0/8", want: "10.0.0.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/netcore", nil)
			r.RemoteAddr = tt.remote
			for _, line := range tt.xff {
				r.Header.Add("X-Forwarded-For", line)
			}
			if tt.fwd != "" {
				r.Header.Set("Forwarded", tt.fwd)
			}
			got, err := clientAddress(r, mustAddressSet(t, tt.trusted))
			if tt.err != "" {
				if !errors.Is(err, errNoClientAddress) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("clientAddress = %v, %v; want error containing %s", got, err, tt.err)
				}
				return
			}
			if err != nil || got != netip.MustParseAddr(tt.want) {
				t.Errorf("clientAddress = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}
