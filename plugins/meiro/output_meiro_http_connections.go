package meiro

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpproxy"
	"golang.org/x/net/http/httpproxy"
)

// maxIdle is how long a connection may wait unused before it is closed:
// less than the keep-alive of common servers.
const maxIdle = 2 * time.Second

// resendOnClosedConnection is the RetryIfErr of client: a request is sent
// once more, on a new connection, when the server had closed its kept-alive
// connection: a write failed (the request never arrived whole), or the
// connection ended before a complete answer (the event may have reached the
// server, as with any failure the queue retries: at least once, sooner).
// The idle connections are closed first: a burst leaves several, idle as
// long, as likely closed.
func resendOnClosedConnection(client *fasthttp.HostClient) fasthttp.RetryIfErrFunc {
	return func(_ *fasthttp.Request, attempts int, err error) (resetTimeout, retry bool) {
		var op *net.OpError
		closed := errors.Is(err, io.EOF) || errors.Is(err, fasthttp.ErrConnectionClosed) ||
			errors.As(err, &op) && op.Op == "write"
		if attempts >= 2 || !closed {
			return false, false
		}
		client.CloseIdleConnections()
		return false, true
	}
}

// proxyDial is how to reach u: nil (directly) or through the proxy the
// environment names for it (HTTPS_PROXY, HTTP_PROXY, NO_PROXY, or their
// lower-case names), chosen as Go's net/http chooses: loopback and NO_PROXY
// hosts go direct. Only http:// proxies are taken: through them every dial
// and CONNECT is bounded by the timeout.
func proxyDial(u *url.URL, timeout time.Duration) (fasthttp.DialFunc, error) {
	proxy, err := httpproxy.FromEnvironment().ProxyFunc()(u)
	if err != nil {
		return nil, fmt.Errorf("the proxy from the environment (HTTPS_PROXY, HTTP_PROXY): %w", err)
	}
	if proxy == nil {
		return nil, nil
	}
	if proxy.Scheme != "http" {
		return nil, fmt.Errorf("the environment names the proxy %s for %s, and meiro_http takes only http:// proxies: set HTTPS_PROXY or HTTP_PROXY to one, or NO_PROXY to reach %s directly", proxy.Redacted(), u.Host, u.Hostname())
	}
	// host:port as net/http dials it (port 80 unless given, no path):
	// fasthttpproxy dials the URL's host and path as written.
	port := proxy.Port()
	if port == "" {
		port = "80"
	}
	addr := (&url.URL{Scheme: "http", User: proxy.User, Host: net.JoinHostPort(proxy.Hostname(), port)}).String()
	d := &fasthttpproxy.Dialer{
		Config:        httpproxy.Config{HTTPProxy: addr, HTTPSProxy: addr},
		DialDualStack: true, Timeout: timeout, ConnectTimeout: timeout,
	}
	return d.GetDialFuncForTLS(false, u.Scheme == "https")
}

// tellingUnwritten is the DialTimeout of meiro_http's client: dial (nil:
// directly, as fasthttp would, within the time left to the request), with
// the connection's writes that run out of time made an unwrittenError.
//
// A timeout of 0 means none was given: fasthttp dials so for a request
// that waits for a connection when a busy one closes. It then dials with
// its default timeout, as it would without this func; given 0,
// DialDualStackTimeout fails at once, and every such request failed under
// load (TestMeiroHTTPDialsForARequestWaitingWhenAConnectionCloses).
func tellingUnwritten(dial fasthttp.DialFunc) fasthttp.DialFuncWithTimeout {
	return func(addr string, timeout time.Duration) (net.Conn, error) {
		var conn net.Conn
		var err error
		switch {
		case dial != nil:
			conn, err = dial(addr)
		case timeout > 0:
			conn, err = fasthttp.DialDualStackTimeout(addr, timeout)
		default:
			conn, err = fasthttp.DialDualStack(addr)
		}
		if err != nil {
			return nil, err
		}
		return unwrittenConn{conn}, nil
	}
}

// unwrittenConn tells a write that ran out of time, by its error: fasthttp
// turns every timeout into the same ErrTimeout, and a request not written
// whole cannot have arrived, while one unanswered may have.
type unwrittenConn struct{ net.Conn }

func (c unwrittenConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if t, ok := err.(interface{ Timeout() bool }); ok && t.Timeout() {
		return n, &unwrittenError{err}
	}
	return n, err
}

// unwrittenError is a write that ran out of time. It has neither Timeout
// nor Unwrap, on purpose: with Timeout, fasthttp would make it ErrTimeout
// (and TLS a permanent net error, which fasthttp makes ErrTimeout too);
// unwrapped, the net.OpError of a write would read as a closed connection
// to send the request again on, when the server is only not reading.
type unwrittenError struct{ err error }

func (e *unwrittenError) Error() string { return e.err.Error() }

// addrWithPort is the host:port of u, with the scheme's port if it has none.
func addrWithPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return u.Host + ":443"
	}
	return u.Host + ":80"
}

// tlsConfig trusts the system's authorities and those in rootCAsFile.
func tlsConfig(rootCAsFile, serverName string) (*tls.Config, error) {
	conf := &tls.Config{ServerName: serverName, MinVersion: tls.VersionTLS12}
	if rootCAsFile == "" {
		return conf, nil
	}
	pem, err := os.ReadFile(rootCAsFile)
	if err != nil {
		return nil, fmt.Errorf("tls_root_cas_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // none to be had here: trust the file's alone
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls_root_cas_file %s holds no PEM certificate", rootCAsFile)
	}
	conf.RootCAs = pool
	return conf, nil
}
