// Package loopback finds free addresses on the loopback interface, for the
// servers that tests and benchmarks start. It does not import the testing
// package, so that the bench binary, which uses it, stays free of it; the
// form for tests (which fails the test) is testkit.FreeAddr.
package loopback

import "net"

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
