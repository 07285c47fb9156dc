package natsipc_test

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

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/natsipc"
)

// testCA issues certificates for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, cn string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestMutualTLS: on an embedded server that requires client
// certificates, a user is matched by its certificate's subject and gets
// its permissions; a client without a certificate cannot connect.
func TestMutualTLS(t *testing.T) {
	ca := newCA(t)
	srv := startServer(t, natsipc.ServerOptions{IPC: ipc.ServerOptions{
		TLS: &tls.Config{
			Certificates: []tls.Certificate{ca.issue(t, "server", x509.ExtKeyUsageServerAuth)},
			ClientCAs:    ca.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
		},
		Users: []ipc.User{{Name: "worker", CertSubject: "CN=worker", Permissions: &ipc.Permissions{
			Publish: ipc.SubjectPermission{Allow: []string{"jobs.>"}},
		}}},
	}})
	worker := connect(t, srv.URL(), ipc.TLS(&tls.Config{
		RootCAs: ca.pool, Certificates: []tls.Certificate{ca.issue(t, "worker", x509.ExtKeyUsageClientAuth)},
	}))
	if err := worker.PublishSync(t.Context(), ipc.NewMsg("jobs.1", nil)); err != nil {
		t.Errorf("the worker's allowed publish: %v", err)
	}
	if err := worker.PublishSync(t.Context(), ipc.NewMsg("admin.1", nil)); !errors.Is(err, ipc.ErrPermission) {
		t.Errorf("the worker's denied publish = %v, want ErrPermission", err)
	}
	// A certificate of nobody known, and none at all.
	for name, certs := range map[string][]tls.Certificate{
		"unknown subject": {ca.issue(t, "stranger", x509.ExtKeyUsageClientAuth)},
		"no certificate":  nil,
	} {
		t.Run(name, func(t *testing.T) {
			c, err := natsipc.Connect(t.Context(), srv.URL(), ipc.TLS(&tls.Config{RootCAs: ca.pool, Certificates: certs}))
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			if certs != nil && !errors.Is(err, ipc.ErrAuth) {
				t.Errorf("Connect with an unknown certificate = %v, want ErrAuth", err)
			}
			t.Log(err)
		})
	}
}
