package transport_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/procxy/procxy/transport"
)

func TestTCP(t *testing.T) {
	ln, err := transport.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tests := []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"DialTCP", func() (net.Conn, error) { return transport.DialTCP(t.Context(), ln.Addr().String()) }},
		{"Dial", func() (net.Conn, error) { return transport.Dial(t.Context(), "tcp", ln.Addr().String()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := echoOnce(ln)
			c, err := tt.dial()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			roundTrip(t, c, "hello over tcp")
			if err := <-done; err != nil {
				t.Fatalf("server: %v", err)
			}
		})
	}
}

func TestDialErrors(t *testing.T) {
	ln, err := transport.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens on addr any more
	tests := []struct {
		name string
		dial func() error
	}{
		{"unknown-network", func() error { _, err := transport.Dial(t.Context(), "udp", addr); return err }},
		{"refused-Dial", func() error { _, err := transport.Dial(t.Context(), "tcp", addr); return err }},
		{"refused-DialTCP", func() error { _, err := transport.DialTCP(t.Context(), addr); return err }},
		{"refused-DialTLS", func() error { _, err := transport.DialTLS(t.Context(), addr, nil); return err }},
		{"tls-no-cert", func() error { _, err := transport.ListenTLS("127.0.0.1:0", &tls.Config{}); return err }},
		{"tls-nil-config", func() error { _, err := transport.ListenTLS("127.0.0.1:0", nil); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.dial(); err == nil {
				t.Fatal("got nil error, want one")
			}
		})
	}
}

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "procxy test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		IsCA:         true,

		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	ln, err := transport.ListenTLS("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()

	t.Run("round-trip", func(t *testing.T) {
		done := echoOnce(ln)
		c, err := transport.DialTLS(t.Context(), addr, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if st := c.ConnectionState(); !st.HandshakeComplete || st.Version < tls.VersionTLS12 {
			t.Errorf("handshake complete %v, version %x; want complete, TLS 1.2 or later", st.HandshakeComplete, st.Version)
		}
		roundTrip(t, c, "hello over tls")
		if err := <-done; err != nil {
			t.Fatalf("server: %v", err)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		done := echoOnce(ln)
		c, err := transport.DialTLS(t.Context(), addr, &tls.Config{}) // system roots only
		if err == nil {
			c.Close()
			t.Fatal("DialTLS trusted a self-signed certificate")
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("DialTLS = %v; want an x509.UnknownAuthorityError", err)
		}
		if err := <-done; err == nil {
			t.Error("server handshake succeeded; want an error")
		}
	})
}
