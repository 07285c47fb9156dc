package tlstransport_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/procxy/procxy/transport"
	"github.com/procxy/procxy/transport/tlstransport"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	ln, err := tlstransport.Listen("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()

	t.Run("round-trip", func(t *testing.T) {
		done := echoOnce(ln)
		c, err := tlstransport.Dial(t.Context(), addr, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if st := c.ConnectionState(); !st.HandshakeComplete || st.Version < tls.VersionTLS12 {
			t.Errorf("handshake complete %v, version %x; want complete, TLS 1.2 or later", st.HandshakeComplete, st.Version)
		}
		msg := "hello over tls"
		if _, err := io.WriteString(c, msg); err != nil {
			t.Fatal(err)
		}
		c.CloseWrite()
		if got, err := io.ReadAll(c); err != nil || string(got) != msg {
			t.Fatalf("echo = %q, %v; want %q", got, err, msg)
		}
		if err := <-done; err != nil {
			t.Fatalf("server: %v", err)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		done := echoOnce(ln)
		c, err := tlstransport.Dial(t.Context(), addr, &tls.Config{}) // system roots only
		if err == nil {
			c.Close()
			t.Fatal("Dial trusted a self-signed certificate")
		}
		var unknown x509.UnknownAuthorityError
		if !errors.As(err, &unknown) {
			t.Errorf("Dial = %v; want an x509.UnknownAuthorityError", err)
		}
		if err := <-done; err == nil {
			t.Error("server handshake succeeded; want an error")
		}
	})
}

func TestErrors(t *testing.T) {
	ln, err := transport.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // now nothing listens there
	if _, err := tlstransport.Dial(t.Context(), addr, nil); err == nil {
		t.Error("Dial to a closed port: got nil error")
	}
	if _, err := tlstransport.Listen("127.0.0.1:0", &tls.Config{}); err == nil {
		t.Error("Listen without a certificate: got nil error")
	}
	if _, err := tlstransport.Listen("127.0.0.1:0", nil); err == nil {
		t.Error("Listen with a nil config: got nil error")
	}
}

// echoOnce accepts one connection from ln, echoes until EOF and reports the
// outcome on the returned channel.
func echoOnce(ln net.Listener) <-chan error {
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, c)
		done <- err
	}()
	return done
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
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
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
