// Package loopback finds free addresses on the loopback interface, for the
// servers that tests and benchmarks start: loopback.go holds FreeAddr.
package loopback

import (
	"net"
	"testing"
)

// FreeAddr is a 127.0.0.1 address with a port that was free a moment ago:
// the kernel picks it, and it is released for the caller's server.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// FreeAddrFor is FreeAddr for a test, which it fails when none is found.
func FreeAddrFor(t testing.TB) string {
	t.Helper()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatalf("finding a free loopback port: %v", err)
	}
	return addr
}
