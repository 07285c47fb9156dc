package rpc_test

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/procxy/procxy/rpc"
)

const (
	mGate uint16 = 100 + iota
	mStubborn
)

var (
	gate     = rpc.Method{ID: mGate}
	stubborn = rpc.Method{ID: mStubborn}
)

// gated is a service whose handlers signal their start and return when
// released: gate also on cancellation, stubborn never before release.
type gated struct {
	started chan struct{}
	release chan struct{}
}

func newGated(t *testing.T) *gated {
	g := &gated{started: make(chan struct{}, 10), release: make(chan struct{})}
	t.Cleanup(func() {
		select {
		case <-g.release:
		default:
			close(g.release)
		}
	})
	return g
}

func (g *gated) mux() *rpc.Mux {
	m := newService().mux()
	m.Handle(mGate, rpc.ResultFunc(func(ctx context.Context, v int) (int, error) {
		g.started <- struct{}{}
		select {
		case <-g.release:
			return v, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}))
	m.Handle(mStubborn, rpc.ResultFunc(func(_ context.Context, v int) (int, error) {
		g.started <- struct{}{}
		<-g.release // ignores its context
		return v, nil
	}))
	return m
}

// gateInFlight starts a gate call over transport tr and returns once its
// handler runs; result gets the call's error (nil with the right result)
// when g.release is closed.
func gateInFlight(t *testing.T, tr string) (g *gated, cli, srv *rpc.Conn, result chan error) {
	t.Helper()
	g = newGated(t)
	cli, srv = pair(t, tr, rpc.Options{Handlers: g.mux()}, rpc.Options{})
	result = make(chan error, 1)
	go func() {
		var got int
		err := cli.Call(context.Background(), gate, 7, &got)
		if err == nil && got != 7 {
			err = errors.New("wrong result")
		}
		result <- err
	}()
	<-g.started
	return g, cli, srv, result
}

// awaitDraining waits until Shutdown, running on another goroutine, has begun.
func awaitDraining(c *rpc.Conn) {
	for !c.Draining() {
		runtime.Gosched()
	}
}

// TestShutdownCaller: the side that shuts down refuses new calls at once,
// lets its call in flight finish, then closes.
func TestShutdownCaller(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			g, cli, _, result := gateInFlight(t, tr)
			shut := make(chan error, 1)
			go func() { shut <- cli.Shutdown(context.Background()) }()
			awaitDraining(cli)
			if err := cli.Call(t.Context(), echo, 1, nil); !errors.Is(err, rpc.ErrNotSent) || !errors.Is(err, rpc.ErrClosed) {
				t.Errorf("call during Shutdown: got %v, want ErrNotSent and ErrClosed", err)
			}
			if err := cli.Send(t.Context(), notify, "x"); !errors.Is(err, rpc.ErrNotSent) {
				t.Errorf("send during Shutdown: got %v, want ErrNotSent", err)
			}
			close(g.release)
			if err := <-result; err != nil {
				t.Errorf("call in flight: %v, want its result", err)
			}
			if err := <-shut; err != nil {
				t.Errorf("Shutdown = %v, want nil", err)
			}
			if err := cli.Err(); !errors.Is(err, rpc.ErrClosed) {
				t.Errorf("Err after Shutdown = %v, want ErrClosed", err)
			}
		})
	}
}

// TestShutdownServer: the serving side that shuts down refuses new
// requests with ErrShuttingDown and still answers the one it runs.
func TestShutdownServer(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			g, cli, srv, result := gateInFlight(t, tr)
			shut := make(chan error, 1)
			go func() { shut <- srv.Shutdown(context.Background()) }()
			awaitDraining(srv)
			err := cli.Call(t.Context(), echo, 1, nil)
			if !errors.Is(err, rpc.ErrShuttingDown) {
				t.Errorf("call to a server shutting down: got %v, want ErrShuttingDown", err)
			}
			if got := streamInts(t, cli); len(got) != 1 || !errors.Is(got[-1], rpc.ErrShuttingDown) {
				t.Errorf("stream from a server shutting down: got %v; want only ErrShuttingDown", got)
			}
			close(g.release)
			if err := <-result; err != nil {
				t.Errorf("call in flight: %v, want its result", err)
			}
			if err := <-shut; err != nil {
				t.Errorf("Shutdown = %v, want nil", err)
			}
		})
	}
}

// streamInts opens a count stream and returns its items, and its error
// under key -1.
func streamInts(t *testing.T, c *rpc.Conn) map[int]error {
	t.Helper()
	out := map[int]error{}
	s, err := c.OpenStream(t.Context(), count, 3)
	if err != nil {
		out[-1] = err
		return out
	}
	defer s.Close()
	var v int
	for s.Next(&v) {
		out[v] = nil
	}
	out[-1] = s.Err()
	return out
}

// TestShutdownGivesUp: a handler that ignores its context does not hold
// Shutdown past its ctx; the connection is closed and the caller of the
// call in flight learns why.
func TestShutdownGivesUp(t *testing.T) {
	g := newGated(t)
	cli, srv := pair(t, "pipe", rpc.Options{Handlers: g.mux()}, rpc.Options{})
	result := make(chan error, 1)
	go func() { result <- cli.Call(context.Background(), stubborn, 1, nil) }()
	<-g.started
	ctx, cancel := context.WithCancel(t.Context())
	shut := make(chan error, 1)
	go func() { shut <- srv.Shutdown(ctx) }()
	awaitDraining(srv)
	cancel()
	if err := <-shut; !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown = %v, want context.Canceled", err)
	}
	if err := srv.Err(); !errors.Is(err, rpc.ErrClosed) || !errors.Is(err, context.Canceled) {
		t.Errorf("server Err = %v, want ErrClosed wrapping the cause", err)
	}
	if err := <-result; !errors.Is(err, rpc.ErrClosed) {
		t.Errorf("call in flight: got %v, want ErrClosed", err)
	}
	close(g.release) // the stubborn handler returns; Close (cleanup) waits for it
}

// TestCloseContext: CloseContext cancels running handlers and waits for
// them only within its context; one that honours its cancellation is
// waited for, one that ignores it is left behind.
func TestCloseContext(t *testing.T) {
	_, _, srv := serving(t, gate)
	if err := srv.CloseContext(t.Context()); err != nil {
		t.Fatalf("CloseContext with a handler that honours its context = %v", err)
	}

	g, _, srv := serving(t, stubborn)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := srv.CloseContext(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("CloseContext with a stubborn handler = %v, want context.Canceled", err)
	}
	if err := srv.Err(); !errors.Is(err, rpc.ErrClosed) {
		t.Errorf("Err = %v, want ErrClosed", err)
	}
	close(g.release) // the stubborn handler returns; Close (cleanup) waits for it
}

// TestShutdownPeerGone: Shutdown of a connection whose peer went away
// stays bounded by its context, even with a handler that ignores the
// cancellation.
func TestShutdownPeerGone(t *testing.T) {
	g, cli, srv := serving(t, stubborn)
	cli.Close()
	<-srv.Done()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Shutdown = %v, want context.Canceled", err)
	}
	close(g.release)
}

// serving starts a call to m of a gated service over a pipe and returns
// once its handler runs.
func serving(t *testing.T, m rpc.Method) (g *gated, cli, srv *rpc.Conn) {
	t.Helper()
	g = newGated(t)
	cli, srv = pair(t, "pipe", rpc.Options{Handlers: g.mux()}, rpc.Options{})
	go cli.Call(context.Background(), m, 1, nil)
	<-g.started
	return g, cli, srv
}
