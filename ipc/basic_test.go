package ipc_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/rpc"
)

// newServer starts a server on a Unix socket in a temporary directory.
func newServer(t testing.TB, opts ...ipc.ServerOption) *ipc.Server {
	t.Helper()
	dir, err := shortDir(t)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ipc.Listen(context.Background(), filepath.Join(dir, "s.sock"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func dial(t testing.TB, s *ipc.Server, opts ...ipc.Option) *ipc.Conn {
	t.Helper()
	c, err := ipc.Dial(context.Background(), s.Addr(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestPubSubBasic(t *testing.T) {
	s := newServer(t)
	a, b := dial(t, s), dial(t, s)
	got := make(chan *ipc.Msg, 10)
	if _, err := b.Subscribe("orders.*", func(m *ipc.Msg) { got <- m }); err != nil {
		t.Fatal(err)
	}
	if err := b.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := a.Publish("orders.new", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	m := <-got
	if m.Subject != "orders.new" || string(m.Data) != "hello" {
		t.Fatalf("got %v %q", m, m.Data)
	}
}

func TestRequestReplyBasic(t *testing.T) {
	s := newServer(t)
	a, b := dial(t, s), dial(t, s)
	if _, err := b.Subscribe("echo", func(m *ipc.Msg) { m.Respond(append([]byte("re:"), m.Data...)) }); err != nil {
		t.Fatal(err)
	}
	b.Flush(t.Context())
	resp, err := a.Request(t.Context(), "echo", []byte("x"))
	if err != nil || string(resp.Data) != "re:x" {
		t.Fatalf("Request = %v, %v", resp, err)
	}
	_, err = a.Request(t.Context(), "nobody", nil)
	if !errors.Is(err, ipc.ErrNoResponders) {
		t.Fatalf("no responders: got %v", err)
	}
	// The server's own endpoint answers too.
	s.Conn().Subscribe("srv.echo", func(m *ipc.Msg) { m.Respond(m.Data) })
	resp, err = a.Request(t.Context(), "srv.echo", []byte("y"))
	if err != nil || string(resp.Data) != "y" {
		t.Fatalf("Request to server = %v, %v", resp, err)
	}
	// And the server calls a client.
	resp, err = s.Conn().Request(t.Context(), "echo", []byte("z"))
	if err != nil || string(resp.Data) != "re:z" {
		t.Fatalf("server Request = %v, %v", resp, err)
	}
}

func TestCancelReachesResponder(t *testing.T) {
	s := newServer(t)
	a, b := dial(t, s), dial(t, s)
	cancelled := make(chan error, 1)
	b.Subscribe("slow", func(m *ipc.Msg) {
		ctx := m.Context()
		go func() {
			<-ctx.Done()
			cancelled <- ctx.Err()
		}()
	})
	b.Flush(t.Context())
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err := a.Request(ctx, "slow", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if err := <-cancelled; err == nil {
		t.Fatal("responder context not cancelled")
	}
}

func TestQueueGroupBasic(t *testing.T) {
	s := newServer(t)
	pub := dial(t, s)
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	wg.Add(100)
	for i := range 3 {
		c := dial(t, s)
		c.QueueSubscribe("work", "workers", func(*ipc.Msg) { mu.Lock(); counts[i]++; mu.Unlock(); wg.Done() })
		c.Flush(t.Context())
	}
	for range 100 {
		pub.Publish("work", nil)
	}
	wg.Wait()
	total := 0
	for _, n := range counts {
		total += n
	}
	if total != 100 {
		t.Fatalf("got %d deliveries, want 100: %v", total, counts)
	}
}

// TestCloseSaysShutdown: a request waiting when the server closes fails
// with an error saying the server shut down, not a bare end of stream.
func TestCloseSaysShutdown(t *testing.T) {
	s := newServer(t)
	a, b := dial(t, s, ipc.NoReconnect()), dial(t, s)
	arrived := make(chan struct{})
	b.Subscribe("hang", func(*ipc.Msg) { close(arrived) })
	b.Flush(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := a.Request(t.Context(), "hang", nil)
		errc <- err
	}()
	<-arrived
	s.Close()
	err := <-errc
	if !errors.Is(err, ipc.ErrConnectionLost) || !errors.Is(err, ipc.ErrServerShutdown) {
		t.Fatalf("got %v, want ErrConnectionLost wrapping ErrServerShutdown", err)
	}
}

// TestTimeoutsNegativeMeansNone: a negative AuthTimeout lets a client
// that is slow to say who it is in, where a short one turns it away; a
// negative ConnectTimeout leaves the dial to its context.
func TestTimeoutsNegativeMeansNone(t *testing.T) {
	const silence = 600 * time.Millisecond
	for _, tc := range []struct {
		auth time.Duration
		ok   bool
	}{{100 * time.Millisecond, false}, {-1, true}} {
		s := newServer(t, ipc.AuthTimeout(tc.auth))
		path := strings.TrimPrefix(s.Addr(), "unix://")
		slow := ipc.WithDialer(func(ctx context.Context) (net.Conn, error) {
			nc, err := new(net.Dialer).DialContext(ctx, "unix", path)
			if err == nil {
				time.Sleep(silence) // connected, and silent for a while
			}
			return nc, err
		})
		c, err := ipc.Dial(t.Context(), s.Addr(), slow, ipc.ConnectTimeout(-1), ipc.NoReconnect())
		if tc.ok != (err == nil) {
			t.Fatalf("AuthTimeout %v, CONNECT after %v: Dial = %v, want ok %v", tc.auth, silence, err, tc.ok)
		}
		if c != nil {
			c.Close()
		}
	}
}

// TestClosedIsRPCClosed: a closed connection's error matches
// rpc.ErrClosed, as procxy's does.
func TestClosedIsRPCClosed(t *testing.T) {
	s := newServer(t)
	c := dial(t, s)
	c.Close()
	err := c.Publish("a", nil)
	if !errors.Is(err, ipc.ErrClosed) || !errors.Is(err, rpc.ErrClosed) {
		t.Fatalf("Publish after Close = %v, want ipc.ErrClosed matching rpc.ErrClosed", err)
	}
}
