package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/procxy/procxy/ipc"
)

// A handler of the server's own endpoint runs on the goroutine that reads
// its requester's connection. One that blocks must not hold up the rest of
// that client's traffic: here a request is answered, and a later message to
// the blocked subscription waits its turn, while the first handler blocks.
func TestServerHandlerBlocksInline(t *testing.T) {
	s := newServer(t)
	c := dial(t, s)
	release := make(chan struct{})
	started := make(chan struct{})
	var mu sync.Mutex
	var order []string
	if _, err := s.Conn().Subscribe("block", func(m *ipc.Msg) {
		if string(m.Data) == "first" {
			close(started)
			<-release
		}
		mu.Lock()
		order = append(order, string(m.Data))
		mu.Unlock()
		m.Respond(m.Data)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Conn().Subscribe("echo", func(m *ipc.Msg) { m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	type reply struct {
		data string
		err  error
	}
	replies := make(chan reply, 2)
	for _, data := range []string{"first", "second"} {
		go func() {
			m, err := c.Request(t.Context(), "block", []byte(data))
			if err != nil {
				replies <- reply{err: err}
				return
			}
			replies <- reply{data: string(m.Data)}
		}()
		if data == "first" {
			<-started // the first is being served (and blocks) before the second is sent
		}
	}
	m, err := c.Request(t.Context(), "echo", []byte("meanwhile"))
	if err != nil || string(m.Data) != "meanwhile" {
		t.Fatalf("echo while a handler blocks = %v, %v", m, err)
	}
	close(release)
	for range 2 {
		if r := <-replies; r.err != nil {
			t.Fatal(r.err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(order) != "[first second]" {
		t.Errorf("handled %v, want [first second]", order)
	}
}

// A client's subscription handler runs on the goroutine reading the
// connection; one that waits for a later message on the same connection
// gets it once another goroutine takes over the reading.
func TestClientHandlerBlocksInline(t *testing.T) {
	s := newServer(t)
	pub, sub := dial(t, s), dial(t, s)
	second := make(chan struct{})
	got := make(chan string, 2)
	if _, err := sub.Subscribe("wait", func(m *ipc.Msg) {
		if string(m.Data) == "first" {
			<-second
		}
		got <- string(m.Data)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Subscribe("signal", func(*ipc.Msg) { close(second) }); err != nil {
		t.Fatal(err)
	}
	if err := sub.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, subj := range []string{"wait", "wait", "signal"} {
		data := "first"
		if subj == "signal" {
			data = ""
		}
		if err := pub.Publish(subj, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := <-got, <-got; a != "first" || b != "first" {
		t.Errorf("got %q, %q", a, b)
	}
}

// Many goroutines making requests on one connection take turns reading it;
// every reply reaches its own requester.
func TestConcurrentRequesters(t *testing.T) {
	s := newServer(t)
	c, r := dial(t, s), dial(t, s)
	if _, err := s.Conn().Subscribe("local", func(m *ipc.Msg) { m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	if _, err := ipc.Handle(r, "remote", func(ctx context.Context, n int) (int, error) { return n + 1, nil }); err != nil {
		t.Fatal(err)
	}
	if err := r.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for i := range 200 {
				n := g*1000 + i
				if g%2 == 0 {
					m, err := c.Request(t.Context(), "local", []byte(fmt.Sprint(n)))
					if err != nil || string(m.Data) != fmt.Sprint(n) {
						errs <- fmt.Errorf("local %d: %v, %v", n, m, err)
						return
					}
					continue
				}
				got, err := ipc.Call[int](t.Context(), c, "remote", n)
				if err != nil || got != n+1 {
					errs <- fmt.Errorf("remote %d: %d, %v", n, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A requester reading the connection itself leaves when its context ends,
// and the connection goes on working for the others.
func TestRequestCancelledWhileReading(t *testing.T) {
	s := newServer(t)
	c := dial(t, s)
	started, cancelled := make(chan struct{}), make(chan struct{})
	if _, err := s.Conn().Subscribe("never", func(m *ipc.Msg) {
		close(started)
		<-m.Context().Done() // the requester's CANCEL reaches the handler
		close(cancelled)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Conn().Subscribe("echo", func(m *ipc.Msg) { m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	// After its first answer the connection's first reader leaves the
	// reading to requesters.
	if _, err := c.Request(t.Context(), "echo", nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() {
		_, err := c.Request(ctx, "never", nil)
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("Request = %v, want context.Canceled", err)
	}
	<-cancelled
	for i := range 10 {
		m, err := c.Request(t.Context(), "echo", []byte{byte(i)})
		if err != nil || len(m.Data) != 1 || m.Data[0] != byte(i) {
			t.Fatalf("echo %d after a cancelled request = %v, %v", i, m, err)
		}
	}
}

// The connection's CallTimeout ends a requester that reads the
// connection itself, and the responder is told.
func TestCallTimeoutWhileReading(t *testing.T) {
	s := newServer(t)
	c := dial(t, s, ipc.CallTimeout(20*time.Millisecond))
	cancelled := make(chan struct{})
	if _, err := s.Conn().Subscribe("never", func(m *ipc.Msg) {
		<-m.Context().Done()
		close(cancelled)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Conn().Subscribe("echo", func(m *ipc.Msg) { m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request(context.Background(), "echo", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Request(context.Background(), "never", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Request = %v, want context.DeadlineExceeded", err)
	}
	<-cancelled
}

// A requester reading the connection when the server goes away fails with
// the reason, and the connection reconnects to a new server at the same
// address: requests work again, read by their requesters.
func TestRequestServerGoneWhileReading(t *testing.T) {
	dir, err := shortDir(t)
	if err != nil {
		t.Fatal(err)
	}
	addr := dir + "/s.sock"
	s, err := ipc.Listen(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	s.Conn().Subscribe("hang", func(m *ipc.Msg) {
		close(started)
		<-m.Context().Done()
	})
	reconnected := make(chan struct{}, 1)
	c, err := ipc.Dial(t.Context(), addr, ipc.Reconnect(time.Millisecond, 10*time.Millisecond, 0, 0),
		ipc.OnState(func(st ipc.State, _ error) {
			if st == ipc.StateReconnected {
				reconnected <- struct{}{}
			}
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	errc := make(chan error, 1)
	go func() {
		_, err := c.Request(t.Context(), "hang", nil)
		errc <- err
	}()
	<-started
	s.Close()
	if err := <-errc; !errors.Is(err, ipc.ErrServerShutdown) && !errors.Is(err, ipc.ErrConnectionLost) {
		t.Fatalf("Request = %v, want ErrServerShutdown or ErrConnectionLost", err)
	}
	s2, err := ipc.Listen(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	s2.Conn().Subscribe("echo", func(m *ipc.Msg) { m.Respond(m.Data) })
	<-reconnected
	m, err := c.Request(t.Context(), "echo", []byte("x"))
	if err != nil || string(m.Data) != "x" {
		t.Fatalf("echo after reconnecting = %v, %v", m, err)
	}
}

// A Handle handler of the server's own endpoint that blocks inline does not
// keep the same client's next request to it from being served meanwhile:
// requests are served concurrently, as without inline serving.
func TestServerHandleBlocksInline(t *testing.T) {
	s := newServer(t)
	c := dial(t, s)
	release := make(chan struct{})
	started := make(chan struct{})
	if _, err := ipc.Handle(s.Conn(), "svc", func(ctx context.Context, block bool) (bool, error) {
		if block {
			close(started)
			select {
			case <-release:
			case <-ctx.Done():
				return false, ctx.Err()
			}
		}
		return block, nil
	}); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := ipc.Call[bool](t.Context(), c, "svc", true)
		errc <- err
	}()
	<-started
	if got, err := ipc.Call[bool](t.Context(), c, "svc", false); err != nil || got {
		t.Fatalf("a request while another blocks = %v, %v", got, err)
	}
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
