package natsipc_test

import (
	"context"
	"errors"
	"iter"
	"strings"
	"testing"
	"time"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/natsipc"
)

// secureServer has three users: alice may publish only orders.>, and
// subscribe to news.> but not news.secret; bob may do anything; carol
// may publish nothing, serves svc.>, and answers what she is asked.
func secureServer(t *testing.T) *natsipc.Server {
	t.Helper()
	return startServer(t, natsipc.ServerOptions{IPC: ipc.ServerOptions{Users: []ipc.User{
		{Name: "alice", Token: "alice-secret", Permissions: &ipc.Permissions{
			Publish:   ipc.SubjectPermission{Allow: []string{"orders.>"}},
			Subscribe: ipc.SubjectPermission{Allow: []string{"news.>", "_INBOX.>"}, Deny: []string{"news.secret"}},
		}},
		{Name: "bob", Token: "bob-secret"},
		{Name: "carol", Token: "carol-secret", Permissions: &ipc.Permissions{
			Publish:        ipc.SubjectPermission{Allow: []string{"nothing"}},
			Subscribe:      ipc.SubjectPermission{Allow: []string{"svc.>", "_INBOX.>"}},
			AllowResponses: true,
		}},
	}}})
}

// errorsTo returns an option that sends a connection's async errors to a
// channel.
func errorsTo(ch chan error) ipc.Option {
	return ipc.OnError(func(err error) {
		select {
		case ch <- err:
		default:
		}
	})
}

func connect(t testing.TB, url string, opts ...ipc.Option) *ipc.Conn {
	t.Helper()
	c, err := natsipc.Connect(t.Context(), url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestAuthentication(t *testing.T) {
	srv := secureServer(t)
	for _, tc := range []struct {
		name, token string
	}{{"wrong token", "guess"}, {"no token", ""}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := natsipc.Connect(t.Context(), srv.URL(), ipc.Token(tc.token))
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			if !errors.Is(err, ipc.ErrAuth) {
				t.Errorf("Connect = %v, want ErrAuth", err)
			}
			if tc.token != "" && strings.Contains(err.Error(), tc.token) {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
	connect(t, srv.URL(), ipc.Token("bob-secret"))
}

func TestPermissions(t *testing.T) {
	srv := secureServer(t)
	aliceErrs := make(chan error, 16)
	alice := connect(t, srv.URL(), ipc.Token("alice-secret"), errorsTo(aliceErrs))
	bob := connect(t, srv.URL(), ipc.Token("bob-secret"))

	t.Run("publish", func(t *testing.T) {
		got := make(chan string, 4)
		s, _ := bob.Subscribe("*.*", func(m *ipc.Msg) { got <- m.Subject })
		defer s.Unsubscribe()
		flush(t, bob)
		if err := alice.PublishSync(t.Context(), ipc.NewMsg("orders.1", nil)); err != nil {
			t.Fatalf("an allowed publish: %v", err)
		}
		if s := <-got; s != "orders.1" {
			t.Errorf("bob got %s", s)
		}
		if err := alice.PublishSync(t.Context(), ipc.NewMsg("payments.1", nil)); !errors.Is(err, ipc.ErrPermission) {
			t.Errorf("PublishSync to a denied subject = %v, want ErrPermission", err)
		}
		if err := <-aliceErrs; !errors.Is(err, ipc.ErrPermission) {
			t.Errorf("OnError got %v, want ErrPermission", err)
		}
		// A later allowed publish is not taken for the earlier refusal.
		if err := alice.PublishSync(t.Context(), ipc.NewMsg("orders.2", nil)); err != nil {
			t.Errorf("an allowed publish after a refusal: %v", err)
		}
		if s := <-got; s != "orders.2" {
			t.Errorf("bob got %s; the refused message went through", s)
		}
	})

	t.Run("request", func(t *testing.T) {
		ipc.Handle(bob, "payments.pay", func(ctx context.Context, n int) (int, error) { return n, nil })
		ipc.Handle(bob, "orders.count", func(ctx context.Context, n int) (int, error) { return n + 1, nil })
		flush(t, bob)
		if n, err := ipc.Call[int](t.Context(), alice, "orders.count", 1); err != nil || n != 2 {
			t.Errorf("an allowed request = %d, %v", n, err)
		}
		// The refusal fails the request at once, as from an ipc server.
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		_, err := ipc.Call[int](ctx, alice, "payments.pay", 1)
		if !errors.Is(err, ipc.ErrPermission) {
			t.Errorf("a request to a denied subject = %v, want ErrPermission", err)
		}
		if ctx.Err() != nil {
			t.Error("the refused request failed only at its deadline")
		}
		drain(aliceErrs)
	})

	t.Run("subscribe", func(t *testing.T) {
		got := make(chan string, 4)
		alice.Subscribe("news.>", func(m *ipc.Msg) { got <- m.Subject })
		if _, err := alice.Subscribe("secrets", func(m *ipc.Msg) { got <- m.Subject }); err != nil {
			t.Fatal(err) // NATS refuses subscriptions asynchronously
		}
		flush(t, alice)
		if err := <-aliceErrs; !errors.Is(err, ipc.ErrPermission) {
			t.Errorf("OnError got %v, want ErrPermission", err)
		}
		for _, s := range []string{"secrets", "news.secret", "news.daily"} {
			bob.Publish(s, nil)
		}
		flush(t, bob)
		flush(t, alice)
		if s := <-got; s != "news.daily" {
			t.Errorf("alice got %s", s)
		}
		select {
		case s := <-got:
			t.Errorf("alice got %s too", s)
		default:
		}
	})

	t.Run("responses", func(t *testing.T) {
		carolErrs := make(chan error, 16)
		carol := connect(t, srv.URL(), ipc.Token("carol-secret"), errorsTo(carolErrs))
		ipc.Handle(carol, "svc.echo", func(ctx context.Context, s string) (string, error) { return s, nil })
		ipc.HandleStream(carol, "svc.count", func(ctx context.Context, n int) iter.Seq2[int, error] {
			return func(yield func(int, error) bool) {
				for i := range n {
					if !yield(i, nil) {
						return
					}
				}
			}
		})
		flush(t, carol)
		if s, err := ipc.Call[string](t.Context(), bob, "svc.echo", "hi"); err != nil || s != "hi" {
			t.Errorf("carol's answer = %q, %v", s, err)
		}
		n := 0
		for v, err := range ipc.Stream[int](t.Context(), bob, "svc.count", 3*ipc.DefaultWindow) {
			if err != nil || v != n {
				t.Fatalf("stream value %d = %d, %v", n, v, err)
			}
			n++
		}
		if n != 3*ipc.DefaultWindow {
			t.Errorf("carol's stream had %d values", n)
		}
		if err := carol.PublishSync(t.Context(), ipc.NewMsg("svc.other", nil)); !errors.Is(err, ipc.ErrPermission) {
			t.Errorf("carol publishing to a subject she was not asked on = %v, want ErrPermission", err)
		}
	})
}

func TestDefaultPermissions(t *testing.T) {
	srv := startServer(t, natsipc.ServerOptions{IPC: ipc.ServerOptions{DefaultPermissions: &ipc.Permissions{
		Publish: ipc.SubjectPermission{Deny: []string{"admin.>"}},
	}}})
	c := connect(t, srv.URL())
	if err := c.PublishSync(t.Context(), ipc.NewMsg("admin.reboot", nil)); !errors.Is(err, ipc.ErrPermission) {
		t.Errorf("a denied publish = %v, want ErrPermission", err)
	}
	if err := c.PublishSync(t.Context(), ipc.NewMsg("user.hello", nil)); err != nil {
		t.Errorf("an allowed publish = %v", err)
	}
}

func TestUnsupportedServerOptions(t *testing.T) {
	for name, o := range map[string]ipc.ServerOptions{
		"rate limit":  {DefaultRateLimit: &ipc.RateLimit{MsgsPerSecond: 1}},
		"user limit":  {Users: []ipc.User{{Name: "x", Token: "y", RateLimit: &ipc.RateLimit{MsgsPerSecond: 1}}}},
		"on connect":  {OnConnect: func(ipc.ClientInfo) {}},
		"bad pattern": {DefaultPermissions: &ipc.Permissions{Publish: ipc.SubjectPermission{Allow: []string{"a..b"}}}},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := natsipc.StartServer(t.Context(), natsipc.ServerOptions{IPC: o})
			if err == nil {
				s.Close()
				t.Fatal("started")
			}
			t.Log(err)
		})
	}
}

func drain(ch chan error) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

func flush(t testing.TB, c *ipc.Conn) {
	t.Helper()
	if err := c.Flush(t.Context()); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

func TestCustomAuthenticate(t *testing.T) {
	srv := startServer(t, natsipc.ServerOptions{IPC: ipc.ServerOptions{
		Authenticate: func(ctx context.Context, c ipc.ConnInfo) (*ipc.User, error) {
			if c.Name != "billing" || c.Token != "s3cret" {
				return nil, errors.New("unknown service")
			}
			return &ipc.User{Name: "billing", Permissions: &ipc.Permissions{
				Publish: ipc.SubjectPermission{Allow: []string{"billing.>"}},
			}}, nil
		},
	}})
	if c, err := natsipc.Connect(t.Context(), srv.URL(), ipc.Name("other"), ipc.Token("s3cret")); !errors.Is(err, ipc.ErrAuth) {
		if err == nil {
			c.Close()
		}
		t.Errorf("Connect as an unknown service = %v, want ErrAuth", err)
	}
	c := connect(t, srv.URL(), ipc.Name("billing"), ipc.Token("s3cret"))
	if err := c.PublishSync(t.Context(), ipc.NewMsg("billing.invoice", nil)); err != nil {
		t.Errorf("an allowed publish: %v", err)
	}
	if err := c.PublishSync(t.Context(), ipc.NewMsg("hr.salary", nil)); !errors.Is(err, ipc.ErrPermission) {
		t.Errorf("a denied publish = %v, want ErrPermission", err)
	}
}
