package pgtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// StartTLS is Start with a server that takes TCP connections over TLS only,
// with a certificate for 127.0.0.1 from a CA of its own. DSN verifies it
// (sslmode=verify-full, sslrootcert=CAFile).
func StartTLS(t testing.TB) *Server {
	t.Helper()
	return start(t, func(s *Server) {
		ca, cert, key, err := newCertificates()
		if err != nil {
			t.Fatalf("making the test certificates: %v", err)
		}
		s.CAFile = filepath.Join(s.dir, "ca.pem")
		s.writeFile(s.CAFile, ca, 0o644)
		s.writeFile(filepath.Join(s.dataDir(), "server.crt"), cert, 0o644)
		s.writeFile(filepath.Join(s.dataDir(), "server.key"), key, 0o600)
		s.writeFile(filepath.Join(s.dataDir(), "postgresql.auto.conf"), []byte("ssl = on\n"), 0o600)
		// TCP only over TLS: a connection without it is refused, so that
		// a test that connects at all has used TLS.
		s.writeFile(filepath.Join(s.dataDir(), "pg_hba.conf"),
			[]byte("local all all trust\nhostssl all all 127.0.0.1/32 trust\n"), 0o600)
		s.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=verify-full&sslrootcert=%s", s.port, s.CAFile)
	})
}

// writeFile writes a file the server's user owns.
func (s *Server) writeFile(path string, b []byte, mode os.FileMode) {
	s.t.Helper()
	if err := os.WriteFile(path, b, mode); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // whatever the umask
		s.t.Fatal(err)
	}
	if s.cred != nil {
		if err := os.Chown(path, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			s.t.Fatal(err)
		}
	}
}

// newCertificates makes a CA and a server certificate for 127.0.0.1 signed
// by it, valid for a day, as PEM.
func newCertificates() (caPEM, certPEM, keyPEM []byte, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	now := time.Now()
	caTemplate := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pgtest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	serverKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	serverTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, serverTemplate, caTemplate, &serverKey.PublicKey, caKey)
	if err != nil {
		return nil, nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(serverKey)
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: serverDER}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}
