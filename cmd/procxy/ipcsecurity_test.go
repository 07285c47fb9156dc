package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestIPCUsers: procxy ipc serve -users: tokens name the users, and each
// user's permissions and rate limit hold for pub, sub and reply; a
// refused client is logged without its token.
func TestIPCUsers(t *testing.T) {
	dir := shortDir(t)
	users := filepath.Join(dir, "users.json")
	if err := os.WriteFile(users, []byte(`{
  "users": [
    {"name": "admin", "token": "adm1n"},
    {"name": "reader", "token": "r3ad",
     "permissions": {"publish": {"deny": [">"]}, "subscribe": {"allow": ["news.>"]}}},
    {"name": "chatty", "token": "ch4t", "rate_limit": {"msgs_per_second": 0.001, "burst": 1}}
  ]
}`), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := filepath.Join(dir, "s.sock")
	srv := start(t, nil, "ipc", "serve", "-server", addr, "-users", users, "-v")
	srv.waitFor(true, "listening on "+addr)
	as := func(token, cmd string, args ...string) []string {
		return append([]string{"ipc", cmd, "-server", addr, "-token", token}, args...)
	}

	sub := start(t, nil, as("r3ad", "sub", "-raw", "-count", "1", "news.today")...)
	sub.waitFor(false, "subscribed")
	runEnv(t, nil, "", as("adm1n", "pub", "news.today", "sunny")...).check(t, "pub as admin", 0, "", "")
	sub.wait().check(t, "sub as reader", 0, "sunny\n", "procxy: subscribed to news.today on the ipc server "+addr+"\n")

	// The last line of stderr is the error; it says what was refused.
	refused := func(what string, r ran, code int, prefix, why string) {
		t.Helper()
		lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
		last := lines[len(lines)-1]
		if r.code != code || !strings.HasPrefix(last, prefix) || !strings.HasSuffix(last, why) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and a last line %q … %q", what, r.code, r.stderr, code, prefix, why)
		}
	}
	refused("pub as reader", runEnv(t, nil, "", as("r3ad", "pub", "news.today", "rain")...), 1,
		"procxy: the server refused a publish to news.today: ipc: permission denied: ", "publish to news.today")
	refused("sub as reader to what it may not", runEnv(t, nil, "", as("r3ad", "sub", "secrets.>")...), 1,
		"procxy: subscribe to secrets.>: ipc: permission denied: ", "subscribe to secrets.>")
	refused("reply as reader", runEnv(t, nil, "", as("r3ad", "reply", "svc.x")...), 1,
		"procxy: subscribe to svc.x: ipc: permission denied: ", "subscribe to svc.x")
	refused("pub past the rate limit", runEnv(t, nil, "", as("ch4t", "pub", "-count", "3", "news.today", "{{Count}}")...), 1,
		"procxy: the server refused a publish to news.today: ipc: rate limit exceeded", "")
	refused("no token", runEnv(t, nil, "", "ipc", "request", "-server", addr, "svc.x"), 4,
		"procxy: cannot connect to the ipc server "+addr+": ipc: authentication failed: ", "no token given")
	refused("wrong token", runEnv(t, nil, "", as("wr0ng", "request", "svc.x")...), 4,
		"procxy: cannot connect to the ipc server "+addr+": ipc: authentication failed: ", "wrong token")

	r := srv.stop(syscall.SIGTERM)
	if !strings.Contains(r.stderr, `msg="ipc: authentication failed"`) || strings.Contains(r.stderr, "wr0ng") {
		t.Errorf("serve -v log: want the refused clients, without their token:\n%s", r.stderr)
	}
}

// TestIPCTLS: procxy ipc serve on tls:// with -tls-ca requires client
// certificates (mutual TLS); the other commands give theirs.
func TestIPCTLS(t *testing.T) {
	dir := shortDir(t)
	ca := newCA(t)
	caFile := ca.write(t, dir, "ca", ca.cert, ca.key)
	srvCert, srvKey := ca.issue(t, dir, "server", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := ca.issue(t, dir, "client", x509.ExtKeyUsageClientAuth)

	srv := start(t, nil, "ipc", "serve", "-server", "tls://127.0.0.1:0", "-tls-cert", srvCert, "-tls-key", srvKey, "-tls-ca", caFile)
	out := srv.waitFor(true, "\n")
	addr, ok := strings.CutPrefix(strings.TrimSpace(out), "listening on ")
	if !ok || !strings.HasPrefix(addr, "tls://127.0.0.1:") {
		t.Fatalf("serve printed %q", out)
	}
	tlsArgs := []string{"-server", addr, "-tls-ca", caFile, "-tls-cert", cliCert, "-tls-key", cliKey}
	rep := start(t, nil, append(append([]string{"ipc", "reply"}, tlsArgs...), "-q", "svc.hello", "hello over TLS")...)
	rep.waitFor(false, "answering")
	runEnv(t, nil, "", append(append([]string{"ipc", "request"}, tlsArgs...), "svc.hello")...).check(t, "request with a certificate", 0, "hello over TLS", "")

	r := runEnv(t, nil, "", "ipc", "request", "-server", addr, "-tls-ca", caFile, "svc.hello")
	if r.code != 4 || !strings.HasPrefix(r.stderr, "procxy: cannot connect to the ipc server "+addr+": ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("request without a client certificate: exit %d, %q; want exit 4 and one line", r.code, r.stderr)
	}
	r = runEnv(t, nil, "", "ipc", "request", "-server", addr, "svc.hello")
	if r.code != 4 || !strings.Contains(r.stderr, "certificate signed by unknown authority") {
		t.Errorf("request that does not trust the server's CA: exit %d, %q", r.code, r.stderr)
	}
	rep.stop(syscall.SIGINT)
	srv.stop(syscall.SIGINT)
}

// testCA issues certificates for one test, as PEM files.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
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
	return &testCA{cert: cert, key: key}
}

// issue writes a certificate for cn, valid for 127.0.0.1, and its key,
// and returns the two files.
func (ca *testCA) issue(t *testing.T, dir, cn string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
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
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	certFile = ca.write(t, dir, cn, cert, key)
	return certFile, strings.TrimSuffix(certFile, ".pem") + ".key"
}

// write writes cert as name.pem and key as name.key in dir.
func (ca *testCA) write(t *testing.T, dir, name string, cert *x509.Certificate, key *ecdsa.PrivateKey) string {
	t.Helper()
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(dir, name+".pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile
}
