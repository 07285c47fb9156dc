package main

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/procxy/procxy/internal/testpki"
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
	ca := testpki.NewCA(t)
	caFile, _ := ca.WriteFiles(t, dir, "ca")
	srvCert, srvKey := ca.IssueFiles(t, dir, "server", x509.ExtKeyUsageServerAuth)
	cliCert, cliKey := ca.IssueFiles(t, dir, "client", x509.ExtKeyUsageClientAuth)

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
