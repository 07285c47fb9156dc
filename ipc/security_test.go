//go:build linux

package ipc_test

import (
	"context"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/procxy/procxy/ipc"
)

// TestProcessWrongToken: a server process that requires a token refuses a
// wrong or missing one with a clear ErrAuth, and its log line says what
// happened without the secret — neither the right token nor the one tried.
func TestProcessWrongToken(t *testing.T) {
	const secret, guess = "s3cret-7f9c2e", "guess-41d8b0"
	dir, err := shortDir(t)
	if err != nil {
		t.Fatal(err)
	}
	srv := startProc(t, "server", childConfig{
		Role: "server", Addr: filepath.Join(dir, "s.sock"), Log: true,
		Users: []ipc.User{{Name: "alice", Token: secret}},
	}, true)
	addr := srv.ready.Addr

	for _, tc := range []struct {
		name, token, why string
	}{
		{"wrong", guess, "wrong token"},
		{"missing", "", "no token given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ipc.Dial(t.Context(), addr, ipc.Token(tc.token), ipc.Name("mallory-"+tc.name))
			if !errors.Is(err, ipc.ErrAuth) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("Dial with a %s token = %v, want ErrAuth saying %q", tc.name, err, tc.why)
			}
			t.Logf("client: %v", err)
			line := srv.stderr.waitFor(t, "mallory-"+tc.name)
			t.Logf("server log: %s", line)
			if !strings.Contains(line, "authentication failed") {
				t.Errorf("the server's log line does not say the authentication failed: %s", line)
			}
		})
	}
	c, err := ipc.Dial(t.Context(), addr, ipc.Token(secret))
	if err != nil {
		t.Fatalf("Dial with the right token: %v", err)
	}
	defer c.Close()
	if id := c.Info().Identity; id != "alice" {
		t.Errorf("identity with the right token = %q, want alice", id)
	}
	st := srv.must(command{Op: "stats"}).Stats
	if st.AuthFailures != 2 {
		t.Errorf("AuthFailures = %d, want 2", st.AuthFailures)
	}
	if log := srv.stderr.String(); strings.Contains(log, secret) || strings.Contains(log, guess) {
		t.Errorf("the server's log contains a token:\n%s", log)
	}
}

// permUsers are identities with NATS-style permissions, by token.
var permUsers = []ipc.User{
	{Name: "admin", Token: "admin"}, // no permissions: everything
	{Name: "orders", Token: "orders", Permissions: &ipc.Permissions{
		Publish: ipc.SubjectPermission{Allow: []string{"orders.>"}, Deny: []string{"orders.secret.*"}},
	}},
	{Name: "reader", Token: "reader", Permissions: &ipc.Permissions{
		Subscribe: ipc.SubjectPermission{Allow: []string{"news.*", "alerts.>"}, Deny: []string{"alerts.internal.>"}},
	}},
	{Name: "denylist", Token: "denylist", Permissions: &ipc.Permissions{
		Publish: ipc.SubjectPermission{Deny: []string{"a.b", "x.*.z"}},
	}},
	{Name: "responder", Token: "responder", Permissions: &ipc.Permissions{
		Publish:        ipc.SubjectPermission{Allow: []string{"responder.own"}},
		Subscribe:      ipc.SubjectPermission{Allow: []string{"svc.>"}},
		AllowResponses: true,
	}},
	{Name: "mute", Token: "mute", Permissions: &ipc.Permissions{
		Publish:   ipc.SubjectPermission{Allow: []string{"mute.own"}},
		Subscribe: ipc.SubjectPermission{Allow: []string{"svc.>"}},
	}},
}

// errorCollector is an OnError option and what it collected.
func errorCollector() (ipc.Option, <-chan error) {
	ch := make(chan error, 64)
	return ipc.OnError(func(err error) {
		select {
		case ch <- err:
		default:
		}
	}), ch
}

// TestPermissionsPublish: publish permissions with NATS's semantics —
// allow lists, deny lists, deny winning over allow, wildcards — enforced
// by the server, with ErrPermission naming the subject.
func TestPermissionsPublish(t *testing.T) {
	s := newServer(t, ipc.Users(permUsers...))
	admin := dial(t, s, ipc.Token("admin"))
	if _, err := admin.Subscribe(">", func(*ipc.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := admin.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user, subject string
		allowed       bool
	}{
		{"orders", "orders.new", true},
		{"orders", "orders.eu.new", true},
		{"orders", "orders", false},           // orders.> needs one more token
		{"orders", "orders.secret.x", false},  // deny wins over allow
		{"orders", "orders.secret.x.y", true}, // orders.secret.* is one token
		{"orders", "billing.new", false},      // not in the allow list
		{"denylist", "a.b", false},
		{"denylist", "a.c", true}, // no allow list: all but the denied
		{"denylist", "x.y.z", false},
		{"denylist", "x.y.z.w", true},
		{"admin", "anything.at.all", true},
	} {
		t.Run(tc.user+"/"+tc.subject, func(t *testing.T) {
			c := dial(t, s, ipc.Token(tc.user))
			err := c.PublishSync(t.Context(), &ipc.Msg{Subject: tc.subject, Data: []byte("x")})
			switch {
			case tc.allowed && err != nil:
				t.Errorf("publish = %v, want it allowed", err)
			case !tc.allowed && !errors.Is(err, ipc.ErrPermission):
				t.Errorf("publish = %v, want ErrPermission", err)
			case !tc.allowed && !strings.Contains(err.Error(), tc.subject):
				t.Errorf("the error %q does not name the subject", err)
			}
			// A request to a denied subject fails at once, and so does an
			// ordinary publish — asynchronously, through OnError.
			if !tc.allowed {
				if _, err := c.Request(t.Context(), tc.subject, nil); !errors.Is(err, ipc.ErrPermission) {
					t.Errorf("request = %v, want ErrPermission", err)
				}
			}
		})
	}
	onErr, errs := errorCollector()
	c := dial(t, s, ipc.Token("orders"), onErr)
	if err := c.Publish("orders.secret.plans", nil); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, errs, "the asynchronous refusal"); !errors.Is(err, ipc.ErrPermission) {
		t.Errorf("OnError got %v, want ErrPermission", err)
	} else {
		t.Logf("OnError: %v", err)
	}
	if n := s.Stats().Denied; n == 0 {
		t.Error("Stats().Denied = 0")
	}
}

// TestPermissionsSubscribe: subscribe permissions — a wildcard
// subscription is allowed only if an allow pattern covers all it can
// match, a denied subscription is refused (ErrPermission through OnError),
// and messages a deny pattern matches are never delivered to a wildcard
// subscription that overlaps it.
func TestPermissionsSubscribe(t *testing.T) {
	s := newServer(t, ipc.Users(permUsers...))
	admin := dial(t, s, ipc.Token("admin"))
	for _, tc := range []struct {
		subject, queue string
		allowed        bool
	}{
		{"news.today", "", true},
		{"news.*", "", true},
		{"news.>", "", false}, // news.* does not cover news.a.b
		{"news", "", false},
		{"alerts.>", "", true}, // overlaps the deny: allowed, filtered
		{"alerts.public.x", "", true},
		{"alerts.internal.x", "", false},
		{"alerts.internal.>", "", false},
		{"weather", "", false},
		{">", "", false},
		{"weather", "workers", false},
		{"news.today", "workers", true},
	} {
		t.Run(tc.subject+"/"+tc.queue, func(t *testing.T) {
			onErr, errs := errorCollector()
			c := dial(t, s, ipc.Token("reader"), onErr)
			before := c.Stats().Errors
			if _, err := c.QueueSubscribe(tc.subject, tc.queue, func(*ipc.Msg) {}); err != nil {
				t.Fatal(err)
			}
			// The server answers the subscription before the flush.
			if err := c.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			refused := c.Stats().Errors > before
			if refused == tc.allowed {
				t.Fatalf("subscription refused = %v, want %v", refused, !tc.allowed)
			}
			if refused {
				if err := recv(t, errs, "the refusal"); !errors.Is(err, ipc.ErrPermission) || !strings.Contains(err.Error(), tc.subject) {
					t.Errorf("refusal = %v, want ErrPermission naming %s", err, tc.subject)
				}
			}
		})
	}

	// A subscription that overlaps a deny pattern gets everything else.
	c := dial(t, s, ipc.Token("reader"))
	got := make(chan string, 16)
	if _, err := c.Subscribe("alerts.>", func(m *ipc.Msg) { got <- m.Subject }); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"alerts.internal.db", "alerts.public.fire"} {
		if err := admin.Publish(subj, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Per-publisher order: the public alert comes after the internal one.
	if subj := recv(t, got, "an alert"); subj != "alerts.public.fire" {
		t.Errorf("reader got %s first; alerts.internal.> is denied to it", subj)
	}
}

// TestPermissionsAllowResponses: a responder whose publish permissions
// allow nothing but its own subject may answer the requests it receives
// (NATS's allow_responses), but not publish to other inboxes; without
// AllowResponses its answers are refused.
func TestPermissionsAllowResponses(t *testing.T) {
	s := newServer(t, ipc.Users(permUsers...))
	admin := dial(t, s, ipc.Token("admin"))

	responder := dial(t, s, ipc.Token("responder"))
	if _, err := ipc.Handle(responder, "svc.add", func(ctx context.Context, x int) (int, error) { return x + 1, nil }); err != nil {
		t.Fatal(err)
	}
	if err := responder.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v, err := ipc.Call[int](t.Context(), admin, "svc.add", 41); err != nil || v != 42 {
		t.Errorf("request to the restricted responder = %d, %v; want 42", v, err)
	}
	// It may not publish to a reply subject it was not asked on.
	err := responder.PublishSync(t.Context(), &ipc.Msg{Subject: admin.NewInbox(), Data: []byte("spoof")})
	if !errors.Is(err, ipc.ErrPermission) {
		t.Errorf("publish to another inbox = %v, want ErrPermission", err)
	}

	// Without AllowResponses the answer is refused: the responder is told,
	// the requester waits until it gives up.
	onErr, errs := errorCollector()
	mute := dial(t, s, ipc.Token("mute"), onErr)
	if _, err := mute.Subscribe("svc.mute", func(m *ipc.Msg) { m.Respond([]byte("hello")) }); err != nil {
		t.Fatal(err)
	}
	if err := mute.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	answer := make(chan error, 1)
	go func() {
		_, err := admin.Request(ctx, "svc.mute", nil)
		answer <- err
	}()
	refusal := recv(t, errs, "the refused answer")
	cancel()
	if !errors.Is(refusal, ipc.ErrPermission) {
		t.Errorf("the answer without AllowResponses: %v, want ErrPermission", refusal)
	}
	t.Logf("answer without AllowResponses: %v", refusal)
	if err := recv(t, answer, "the request"); !errors.Is(err, context.Canceled) {
		t.Errorf("request = %v, want it unanswered", err)
	}
}

// TestProcessMutualTLS: a server process that requires client
// certificates accepts a client with one from its CA, naming it by the
// certificate's subject, and refuses one without a certificate or with a
// certificate from another CA.
func TestProcessMutualTLS(t *testing.T) {
	p := newPKI(t, "mtls")
	srv := startProc(t, "server", childConfig{
		Role: "server", Addr: "tls://127.0.0.1:0", ClientAuth: true,
		Cert: p.server.certFile, Key: p.server.keyFile, CA: p.caFile,
	}, false)
	addr := srv.ready.Addr
	alice := p.client(t, "alice", pkix.Name{CommonName: "alice", Organization: []string{"procxy tests"}})

	c, err := ipc.Dial(t.Context(), addr, ipc.TLS(p.clientTLS(&alice)))
	if err != nil {
		t.Fatalf("Dial with a client certificate: %v", err)
	}
	defer c.Close()
	if id := c.Info().Identity; id != "CN=alice,O=procxy tests" {
		t.Errorf("identity = %q, want the certificate's subject", id)
	}

	// A client process with the certificate too.
	cp := startProc(t, "client", childConfig{Role: "client", Addr: addr, CA: p.caFile, Cert: alice.certFile, Key: alice.keyFile}, false)
	if cp.ready.Addr != "CN=alice,O=procxy tests" {
		t.Errorf("client process identity = %q", cp.ready.Addr)
	}

	other := newPKI(t, "other")
	mallory := other.client(t, "mallory", pkix.Name{CommonName: "mallory"})
	for _, tc := range []struct {
		name string
		kp   *keyPair
	}{
		{"no-certificate", nil},
		{"unknown-ca", &mallory},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ipc.Dial(t.Context(), addr, ipc.TLS(p.clientTLS(tc.kp)), ipc.NoReconnect())
			if err == nil {
				t.Fatal("Dial succeeded")
			}
			t.Logf("Dial: %v", err)
			if errors.Is(err, ipc.ErrProtocol) {
				t.Errorf("the refusal is reported as a protocol violation: %v", err)
			}
			if !strings.Contains(err.Error(), "tls") {
				t.Errorf("the error does not say TLS refused it: %v", err)
			}
		})
	}
	// And a client that does not trust the server's CA.
	if _, err := ipc.Dial(t.Context(), addr, ipc.TLS(other.clientTLS(&mallory)), ipc.NoReconnect()); err == nil {
		t.Error("Dial trusting another CA succeeded")
	} else {
		t.Logf("Dial trusting another CA: %v", err)
	}
	st := srv.must(command{Op: "stats"})
	if st.Stats.AuthFailures < 2 {
		t.Errorf("AuthFailures = %d, want at least 2", st.Stats.AuthFailures)
	}
	for _, ci := range st.Clients {
		if ci.Identity.Method != "cert" || ci.Identity.Cert != "CN=alice,O=procxy tests" {
			t.Errorf("client %d identity %+v, want alice's certificate", ci.ID, ci.Identity)
		}
	}
}

// TestCertificateUsers: with Users, a certificate subject is an identity
// like a token; a valid certificate of someone else is refused.
func TestCertificateUsers(t *testing.T) {
	p := newPKI(t, "users")
	s, err := ipc.Listen(t.Context(), "tls://127.0.0.1:0", ipc.TLS(p.serverTLS(true)),
		ipc.Users(ipc.User{Name: "alice", CertSubject: "CN=alice"}))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	alice, bob := p.client(t, "alice", pkix.Name{CommonName: "alice"}), p.client(t, "bob", pkix.Name{CommonName: "bob"})
	c, err := ipc.Dial(t.Context(), s.Addr(), ipc.TLS(p.clientTLS(&alice)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if id := c.Info().Identity; id != "alice" {
		t.Errorf("identity = %q, want alice", id)
	}
	_, err = ipc.Dial(t.Context(), s.Addr(), ipc.TLS(p.clientTLS(&bob)))
	if !errors.Is(err, ipc.ErrAuth) {
		t.Errorf("bob's Dial = %v, want ErrAuth", err)
	}
}

// TestRateLimit: an identity over its rate limit gets ErrRateLimited for
// what it sends (requests and PublishSync at once, Publish through
// OnError), across all its connections; another identity is unaffected.
func TestRateLimit(t *testing.T) {
	// Nearly no refill: the burst is all the test may use, however slow
	// the machine is.
	slow := &ipc.RateLimit{MsgsPerSecond: 0.001, Burst: 3}
	s := newServer(t, ipc.MaxPayload(64<<10), ipc.Users(
		ipc.User{Name: "alice", Token: "alice", RateLimit: slow},
		ipc.User{Name: "carol", Token: "carol", RateLimit: &ipc.RateLimit{BytesPerSecond: 1}},
		ipc.User{Name: "bob", Token: "bob"},
	))
	bob := dial(t, s, ipc.Token("bob"))
	if _, err := bob.Subscribe(">", func(*ipc.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := bob.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	onErr, errs := errorCollector()
	alice := dial(t, s, ipc.Token("alice"), onErr)
	for i := range 3 {
		if err := alice.PublishSync(t.Context(), &ipc.Msg{Subject: "chat", Data: []byte(strconv.Itoa(i))}); err != nil {
			t.Fatalf("alice's message %d within the burst: %v", i, err)
		}
	}
	err := alice.PublishSync(t.Context(), &ipc.Msg{Subject: "chat", Data: []byte("one too many")})
	if !errors.Is(err, ipc.ErrRateLimited) || !strings.Contains(err.Error(), "alice") {
		t.Fatalf("alice's 4th message = %v, want ErrRateLimited naming her", err)
	}
	t.Logf("over the limit: %v", err)
	if _, err := alice.Request(t.Context(), "svc", nil); !errors.Is(err, ipc.ErrRateLimited) {
		t.Errorf("alice's request = %v, want ErrRateLimited", err)
	}
	if err := alice.Publish("chat", nil); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, errs, "the refused publish"); !errors.Is(err, ipc.ErrRateLimited) {
		t.Errorf("OnError got %v, want ErrRateLimited", err)
	}
	// The limit is the identity's, whatever connection it uses.
	alice2 := dial(t, s, ipc.Token("alice"))
	if err := alice2.PublishSync(t.Context(), &ipc.Msg{Subject: "chat"}); !errors.Is(err, ipc.ErrRateLimited) {
		t.Errorf("alice's second connection = %v, want ErrRateLimited", err)
	}
	// Bytes: the bucket holds one largest message, then nothing refills.
	carol := dial(t, s, ipc.Token("carol"))
	big := make([]byte, 60<<10)
	if err := carol.PublishSync(t.Context(), &ipc.Msg{Subject: "chat", Data: big}); err != nil {
		t.Fatalf("carol's first large message: %v", err)
	}
	if err := carol.PublishSync(t.Context(), &ipc.Msg{Subject: "chat", Data: big}); !errors.Is(err, ipc.ErrRateLimited) {
		t.Errorf("carol's second large message = %v, want ErrRateLimited", err)
	}
	// Bob is not limited.
	for i := range 100 {
		if err := bob.PublishSync(t.Context(), &ipc.Msg{Subject: "chat", Data: []byte("bob")}); err != nil {
			t.Fatalf("bob's message %d: %v", i, err)
		}
	}
	if n := s.Stats().RateLimited; n < 5 {
		t.Errorf("Stats().RateLimited = %d, want at least 5", n)
	}
}

// TestSocketPermissions: a named address is a socket in a private
// directory (0700) with mode 0600; an explicit path gets mode 0600 too.
func TestSocketPermissions(t *testing.T) {
	run, err := shortDir(t)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", run)
	s, err := ipc.Listen(t.Context(), "permtest")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sock := s.Addr()
	if filepath.Base(sock) != "permtest.sock" || !strings.HasPrefix(sock, run) {
		t.Errorf("named socket at %s, want permtest.sock under %s", sock, run)
	}
	checkMode(t, filepath.Dir(sock), 0o700)
	checkMode(t, sock, 0o600)
	c, err := ipc.Dial(t.Context(), "permtest") // the same name finds it
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	s2, err := ipc.Listen(t.Context(), filepath.Join(run, "explicit.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	checkMode(t, s2.Addr(), 0o600)
}

func checkMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %#o, want %#o", path, got, want)
	}
}

// TestProcessPeerCredentials: on a Unix socket a client process is known
// by its uid, gid and pid without any token; Users may name it by uid, and
// a uid that is not listed is refused.
func TestProcessPeerCredentials(t *testing.T) {
	s := newServer(t)
	cp := startProc(t, "client", childConfig{Role: "client", Addr: s.Addr(), Name: "creds"}, false)
	uid := os.Getuid()
	if want := "uid:" + strconv.Itoa(uid); cp.ready.Addr != want {
		t.Errorf("the client process's identity = %q, want %q", cp.ready.Addr, want)
	}
	var found bool
	for _, ci := range s.Clients() {
		if ci.Name != "creds" {
			continue
		}
		found = true
		id := ci.Identity
		if id.Method != "uid" || id.UID != uid || id.GID != os.Getgid() || id.PID != cp.pid() {
			t.Errorf("identity %+v, want uid %d gid %d pid %d", id, uid, os.Getgid(), cp.pid())
		}
	}
	if !found {
		t.Errorf("the client process is not among the server's clients: %+v", s.Clients())
	}

	me := uid
	s2 := newServer(t, ipc.Users(ipc.User{Name: "me", UID: &me}))
	c := dial(t, s2)
	if id := c.Info().Identity; id != "me" {
		t.Errorf("identity by uid = %q, want me", id)
	}
	other := uid + 1
	s3 := newServer(t, ipc.Users(ipc.User{Name: "someone-else", UID: &other}))
	if _, err := ipc.Dial(t.Context(), s3.Addr()); !errors.Is(err, ipc.ErrAuth) {
		t.Errorf("Dial as an unlisted uid = %v, want ErrAuth", err)
	} else {
		t.Logf("unlisted uid: %v", err)
	}
}
