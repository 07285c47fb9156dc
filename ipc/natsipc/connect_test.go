package natsipc_test

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/natsipc"
)

func TestConnectEmbedded(t *testing.T) {
	c, err := natsipc.Connect(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	info := c.Info()
	if info.Backend != "nats" || !info.Connected || info.MaxPayload != ipc.DefaultMaxPayload {
		t.Errorf("Info = %+v, want a connected nats backend with ipc's default max payload", info)
	}
	// Another process could join at the URL; another connection does.
	other := connect(t, info.Server)
	ipc.Handle(c, "hello", func(ctx context.Context, name string) (string, error) { return "hello, " + name, nil })
	flush(t, c)
	if s, err := ipc.Call[string](t.Context(), other, "hello", "nats"); err != nil || s != "hello, nats" {
		t.Errorf("Call = %q, %v", s, err)
	}
	if natsipc.NATS(c) == nil || natsipc.NATS(other) == nil {
		t.Error("NATS returned nil for a natsipc connection")
	}
}

// freePort returns a loopback port nobody listens on (for a while).
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func TestConnectUnreachable(t *testing.T) {
	url := "nats://127.0.0.1:" + strconv.Itoa(freePort(t))
	_, err := natsipc.Connect(t.Context(), url, ipc.ConnectTimeout(time.Second))
	if !errors.Is(err, nats.ErrNoServers) || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Connect to nobody = %v, want no servers: connection refused", err)
	}
	t.Log(err)

	// With RetryOnConnect, Connect waits for its context.
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := natsipc.Connect(ctx, url, ipc.RetryOnConnect(), ipc.Reconnect(time.Millisecond, 10*time.Millisecond, 0, 0))
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Connect with RetryOnConnect, cancelled = %v, want Canceled", err)
	}
}

func TestRetryOnConnect(t *testing.T) {
	// Until the server starts, something at its port refuses clients
	// (and says when one came).
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	tried := make(chan struct{}, 1)
	refused := make(chan struct{})
	go func() {
		defer close(refused)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
			select {
			case tried <- struct{}{}:
			default:
			}
		}
	}()
	type result struct {
		c   *ipc.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := natsipc.Connect(t.Context(), "nats://127.0.0.1:"+strconv.Itoa(port), ipc.RetryOnConnect(),
			ipc.Reconnect(time.Millisecond, 20*time.Millisecond, 0, 0))
		done <- result{c, err}
	}()
	<-tried
	l.Close()
	<-refused
	startServer(t, natsipc.ServerOptions{Port: port})
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	r.c.Close()
}

// TestReconnect restarts the server under a connection: it reports the
// loss and the reconnection, requests waiting fail with
// ErrConnectionLost, publishes made meanwhile are delivered, and its
// subscriptions are back.
func TestReconnect(t *testing.T) {
	port := freePort(t)
	srv := startServer(t, natsipc.ServerOptions{Port: port})
	states := make(chan ipc.State, 16)
	c := connect(t, srv.URL(), ipc.Reconnect(5*time.Millisecond, 50*time.Millisecond, 0.2, 0),
		ipc.OnState(func(s ipc.State, err error) {
			select {
			case states <- s:
			default:
			}
		}))
	unbuffered := connect(t, srv.URL(), ipc.ReconnectBuffer(-1), ipc.Reconnect(5*time.Millisecond, 50*time.Millisecond, 0.2, 0))
	got := make(chan string, 16)
	c.Subscribe("events", func(m *ipc.Msg) { got <- string(m.Data) })
	hang := make(chan struct{})
	c.Subscribe("hang", func(m *ipc.Msg) { close(hang) })
	flush(t, c)
	errc := make(chan error, 1)
	go func() {
		_, err := c.Request(t.Context(), "hang", nil)
		errc <- err
	}()
	<-hang
	srv.Close()
	for s := range states {
		if s == ipc.StateDisconnected {
			break
		}
	}
	if err := <-errc; !errors.Is(err, ipc.ErrConnectionLost) {
		t.Errorf("a request waiting when the server went = %v, want ErrConnectionLost", err)
	}
	if _, err := c.Request(t.Context(), "hang", nil); !errors.Is(err, ipc.ErrConnectionLost) {
		t.Errorf("a request while disconnected = %v, want ErrConnectionLost", err)
	}
	if err := c.Publish("events", []byte("while away")); err != nil {
		t.Fatalf("Publish while disconnected: %v", err)
	}
	waitFor(t, "the other connection to notice", func() bool { return unbuffered.State() == ipc.StateDisconnected })
	if err := unbuffered.Publish("events", nil); !errors.Is(err, ipc.ErrBufferFull) {
		t.Errorf("Publish while disconnected without a buffer = %v, want ErrBufferFull", err)
	}
	startServer(t, natsipc.ServerOptions{Port: port})
	for s := range states {
		if s == ipc.StateConnected {
			break
		}
	}
	if s := <-got; s != "while away" {
		t.Errorf("got %q", s)
	}
	if st := c.Stats(); st.Reconnects != 1 {
		t.Errorf("Stats().Reconnects = %d", st.Reconnects)
	}
}

// TestHeartbeat: a server that stops answering (a network that drops
// everything) is declared dead after three silent heartbeat intervals.
func TestHeartbeat(t *testing.T) {
	srv := startServer(t, natsipc.ServerOptions{})
	p := newProxy(t, srv.URL()[len("nats://"):])
	lost := make(chan error, 1)
	c := connect(t, "nats://"+p.addr(), ipc.Heartbeat(20*time.Millisecond), ipc.OnState(func(s ipc.State, err error) {
		if s == ipc.StateDisconnected {
			select {
			case lost <- err:
			default:
			}
		}
	}))
	flush(t, c)
	p.blackhole()
	if err := <-lost; !errors.Is(err, nats.ErrStaleConnection) {
		t.Errorf("disconnected with %v, want a stale connection", err)
	}
}

// proxy forwards TCP connections to a server until told to drop
// everything, as a broken network does.
type proxy struct {
	l     net.Listener
	to    string
	mu    sync.Mutex
	dead  bool       // guarded by mu
	conns []net.Conn // guarded by mu
	wg    sync.WaitGroup
}

func newProxy(t *testing.T, to string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, to: to}
	p.wg.Go(func() {
		for {
			a, err := l.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", to)
			if err != nil {
				a.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, a, b)
			p.mu.Unlock()
			p.wg.Go(func() { p.pipe(b, a) })
			p.wg.Go(func() { p.pipe(a, b) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		p.cut()
		p.wg.Wait()
	})
	return p
}

// cut breaks the connections made so far; new ones go through.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) blackhole() {
	p.mu.Lock()
	p.dead = true
	p.mu.Unlock()
}

// pipe copies from src to dst, dropping the bytes once the proxy is dead.
func (p *proxy) pipe(dst io.Writer, src io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		dead := p.dead
		p.mu.Unlock()
		if dead {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// TestNew wraps a connection the caller made: the ipc connection works
// over it, the caller's handlers still run, and closing the ipc connection
// leaves the NATS connection open without its subscriptions.
func TestNew(t *testing.T) {
	srv := startServer(t, natsipc.ServerOptions{})
	userSawDisconnect := make(chan struct{}, 1)
	nc, err := nats.Connect(srv.URL(), nats.DisconnectErrHandler(func(*nats.Conn, error) {
		select {
		case userSawDisconnect <- struct{}{}:
		default:
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ipcSawDisconnect := make(chan struct{}, 1)
	c, err := natsipc.New(t.Context(), nc, ipc.OnState(func(s ipc.State, err error) {
		if s == ipc.StateDisconnected {
			select {
			case ipcSawDisconnect <- struct{}{}:
			default:
			}
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	if natsipc.NATS(c) != nc {
		t.Error("NATS(c) is not the wrapped connection")
	}
	before := nc.NumSubscriptions()
	ipc.Handle(c, "double", func(ctx context.Context, n int) (int, error) { return 2 * n, nil })
	flush(t, c)
	other := connect(t, srv.URL())
	if n, err := ipc.Call[int](t.Context(), other, "double", 21); err != nil || n != 42 {
		t.Errorf("Call = %d, %v", n, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if !nc.IsConnected() {
		t.Error("closing the ipc connection closed the NATS connection")
	}
	waitFor(t, "the subscriptions to go", func() bool { return nc.NumSubscriptions() == before })
	srv.Close()
	<-userSawDisconnect // the caller's handler still runs
	select {
	case <-ipcSawDisconnect:
		t.Error("a closed ipc connection still got state changes")
	default:
	}
}

func TestBroadcast(t *testing.T) {
	srv := startServer(t, natsipc.ServerOptions{})
	got := make(chan string, 4)
	for range 2 {
		r := connect(t, srv.URL(), ipc.OnBroadcast(func(m *ipc.Msg) { got <- m.Subject + ":" + string(m.Data) }))
		flush(t, r)
	}
	c := connect(t, srv.URL())
	if err := natsipc.Broadcast(c, "shutdown.soon", []byte("5m")); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if s := <-got; s != "shutdown.soon:5m" {
			t.Errorf("OnBroadcast got %q", s)
		}
	}
	if err := natsipc.Broadcast(c, "a.*", nil); !errors.Is(err, ipc.ErrBadSubject) {
		t.Errorf("Broadcast to a wildcard = %v", err)
	}
}

func TestHeaderKeysNATSRefuses(t *testing.T) {
	srv := startServer(t, natsipc.ServerOptions{})
	c := connect(t, srv.URL())
	err := c.PublishMsg(&ipc.Msg{Subject: "h", Header: ipc.Header{"a/b": {"x"}}})
	if !errors.Is(err, ipc.ErrBadHeader) {
		t.Errorf("a header key nats.go refuses: %v, want ErrBadHeader", err)
	}
}

// TestServingSurvivesReconnect: a responder whose connection breaks and
// comes back while it works on a request still answers it, as over NATS
// the answer, buffered while disconnected, reaches the requester.
func TestServingSurvivesReconnect(t *testing.T) {
	srv := startServer(t, natsipc.ServerOptions{})
	p := newProxy(t, srv.URL()[len("nats://"):])
	back := make(chan struct{}, 1)
	resp := connect(t, "nats://"+p.addr(), ipc.Reconnect(5*time.Millisecond, 50*time.Millisecond, 0, 0),
		ipc.OnState(func(s ipc.State, err error) {
			if s == ipc.StateReconnected {
				select {
				case back <- struct{}{}:
				default:
				}
			}
		}))
	req := connect(t, srv.URL())
	started, release := make(chan struct{}), make(chan struct{})
	ipc.Handle(resp, "slow.double", func(ctx context.Context, n int) (int, error) {
		close(started)
		select {
		case <-release:
			return 2 * n, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	flush(t, resp)
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		n, err := ipc.Call[int](ctx, req, "slow.double", 21)
		done <- result{n, err}
	}()
	<-started
	p.cut()
	<-back
	close(release)
	if r := <-done; r.err != nil || r.n != 42 {
		t.Errorf("Call = %d, %v; want the answer of the responder that reconnected", r.n, r.err)
	}
}

func TestNoEcho(t *testing.T) {
	srv := startServer(t, natsipc.ServerOptions{})
	c := connect(t, srv.URL(), ipc.NoEcho())
	other := connect(t, srv.URL())
	got := make(chan string, 4)
	for _, x := range []*ipc.Conn{c, other} {
		x.Subscribe("echo", func(m *ipc.Msg) { got <- string(m.Data) })
		flush(t, x)
	}
	c.Publish("echo", []byte("from c"))
	other.Publish("echo", []byte("from other"))
	flush(t, c)
	flush(t, other)
	flush(t, c)
	var all []string
	for len(got) > 0 {
		all = append(all, <-got)
	}
	slices.Sort(all)
	if want := []string{"from c", "from other", "from other"}; !slices.Equal(all, want) {
		t.Errorf("got %q, want %q (c does not hear itself)", all, want)
	}
}
