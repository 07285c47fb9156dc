package rpc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/procxy/procxy/observe"
	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/rpc/wire"
	"github.com/procxy/procxy/transport"
)

// recorder is an Observer that injects a fixed traceparent on the client
// side and records every ended call.
type recorder struct {
	inject string
	mu     sync.Mutex
	calls  []observe.Call // guarded by mu
	seen   []string       // traceparents a server side found; guarded by mu
	ctxOK  []bool         // the handler's context carried CallStart's value; guarded by mu
	done   chan struct{}  // one token per ended call
}

type ctxKey struct{}

func (r *recorder) CallStart(ctx context.Context, c *observe.Call) context.Context {
	if c.Side == observe.Client && c.Carrier != nil && r.inject != "" {
		c.Carrier.Set("traceparent", r.inject)
	}
	if c.Side == observe.Server {
		tp := ""
		if c.Carrier != nil {
			tp = c.Carrier.Get("traceparent")
		}
		r.mu.Lock()
		r.seen = append(r.seen, tp)
		r.mu.Unlock()
	}
	return context.WithValue(ctx, ctxKey{}, c.Method)
}

func (r *recorder) CallEnd(ctx context.Context, c *observe.Call) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cp := *c
	cp.Carrier = nil
	r.calls = append(r.calls, cp)
	r.ctxOK = append(r.ctxOK, ctx.Value(ctxKey{}) == c.Method)
	r.done <- struct{}{}
}

func (r *recorder) Child(observe.ChildEvent) {}

func (r *recorder) ended() []observe.Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// observedPair connects a client and a server Conn over a socketpair, each
// with its own recorder.
func observedPair(t *testing.T, metadata bool, mux *rpc.Mux) (cli *rpc.Conn, co, so *recorder) {
	return observedPairLane(t, metadata, false, mux)
}

func observedPairLane(t *testing.T, metadata, lane bool, mux *rpc.Mux) (cli *rpc.Conn, co, so *recorder) {
	t.Helper()
	a, b, err := transport.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	na, err := transport.FileConn(a)
	a.Close()
	if err != nil {
		t.Fatal(err)
	}
	nb, err := transport.FileConn(b)
	b.Close()
	if err != nil {
		t.Fatal(err)
	}
	co = &recorder{inject: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", done: make(chan struct{}, 16)}
	so = &recorder{done: make(chan struct{}, 16)}
	cli = rpc.NewConn(na, rpc.Options{Role: rpc.RoleParent, Observer: co, Service: "svc", Metadata: metadata, SharedMemory: lane})
	srv := rpc.NewConn(nb, rpc.Options{Role: rpc.RoleChild, Handlers: mux, Observer: so, Service: "svc", Metadata: metadata, SharedMemory: lane})
	t.Cleanup(func() { cli.Close(); srv.Close() })
	return cli, co, so
}

// TestObserver: both sides see each call with its method name, kind,
// sizes and error, and the client's trace context reaches the server's
// Observer and the handler's context.
func TestObserver(t *testing.T) {
	mux := new(rpc.Mux)
	mux.Handle(mEcho, rpc.ResultFunc(func(ctx context.Context, v string) (string, error) {
		if ctx.Value(ctxKey{}) != "echo" {
			return "", errors.New("the handler's context lacks the observer's value")
		}
		return v, nil
	}).Named("echo"))
	mux.Handle(mFail, rpc.ResultFunc(func(_ context.Context, msg string) (any, error) {
		return nil, &rpc.RemoteError{Message: msg, Code: "E_FAIL"}
	}).Named("fail"))
	mux.Handle(mCount, rpc.StreamFunc(func(_ context.Context, n int, send func(int) error) error {
		for i := range n {
			if err := send(i); err != nil {
				return err
			}
		}
		return nil
	}).Named("count"))
	notified := make(chan string, 1)
	mux.Handle(mNotify, rpc.SendFunc(func(_ context.Context, s string) error { notified <- s; return nil }).Named("notify"))

	for _, metadata := range []bool{true, false} {
		name := "metadata"
		if !metadata {
			name = "no-metadata"
		}
		t.Run(name, func(t *testing.T) {
			cli, co, so := observedPair(t, metadata, mux)
			ctx := t.Context()
			var got string
			if err := cli.Call(ctx, rpc.Method{ID: mEcho, Name: "echo"}, "hello", &got); err != nil || got != "hello" {
				t.Fatalf("echo = %q, %v", got, err)
			}
			err := cli.Call(ctx, rpc.Method{ID: mFail}, "boom", nil)
			var re *rpc.RemoteError
			if !errors.As(err, &re) {
				t.Fatalf("fail = %v, want a RemoteError", err)
			}
			n := 0
			for _, err := range rpc.StreamOf[int](ctx, cli, rpc.Method{ID: mCount, Kind: rpc.KindStream, Name: "count"}, 3) {
				if err != nil {
					t.Fatal(err)
				}
				n++
			}
			if err := cli.Send(ctx, rpc.Method{ID: mNotify, Kind: rpc.KindNone, Name: "notify"}, "hi"); err != nil {
				t.Fatal(err)
			}
			<-notified
			cli.Close() // waits for nothing on the server: wait for its observations below

			want := []struct {
				method string
				kind   observe.Kind
				err    bool
			}{{"echo", observe.Unary, false}, {"#3", observe.Unary, true}, {"count", observe.Stream, false}, {"notify", observe.OneWay, false}}
			cc := co.ended()
			if len(cc) != len(want) {
				t.Fatalf("client observed %d calls, want %d: %+v", len(cc), len(want), cc)
			}
			for i, w := range want {
				c := cc[i]
				if c.Side != observe.Client || c.Method != w.method || c.Kind != w.kind || (c.Err != nil) != w.err || c.Service != "svc" {
					t.Errorf("client call %d = %+v, want %s %v err=%v", i, c, w.method, w.kind, w.err)
				}
				if c.BytesOut == 0 || c.Duration <= 0 {
					t.Errorf("client call %d: %d bytes out, duration %v; want both > 0", i, c.BytesOut, c.Duration)
				}
			}
			if cc[0].BytesIn != 6 || cc[0].BytesOut != 6 { // msgpack "hello": a5 + 5 bytes
				t.Errorf("echo sizes = %d out, %d in; want 6 and 6", cc[0].BytesOut, cc[0].BytesIn)
			}
			if cc[2].BytesIn != 3 { // three one-byte chunks
				t.Errorf("count received %d bytes, want 3", cc[2].BytesIn)
			}
			// The server's observations: wait until all four have ended.
			for range 4 {
				<-so.done
			}
			sc := so.ended()
			slices.SortFunc(sc, func(a, b observe.Call) int { return int(a.MethodID) - int(b.MethodID) })
			names := []string{sc[0].Method, sc[1].Method, sc[2].Method, sc[3].Method}
			if !slices.Equal(names, []string{"echo", "fail", "count", "notify"}) {
				t.Errorf("server observed %q", names)
			}
			if sc[0].BytesIn != 6 || sc[0].BytesOut != 6 || sc[1].Err == nil || sc[2].BytesOut != 3 {
				t.Errorf("server observations = %+v", sc)
			}
			so.mu.Lock()
			defer so.mu.Unlock()
			for i, tp := range so.seen {
				want := co.inject
				if !metadata {
					want = ""
				}
				if tp != want {
					t.Errorf("server call %d saw traceparent %q, want %q", i, tp, want)
				}
			}
			for i, ok := range so.ctxOK {
				if !ok {
					t.Errorf("server call %d: CallEnd's context is not CallStart's", i)
				}
			}
		})
	}
}

// TestMetadataMalformed: a request whose metadata does not parse ends the
// connection with ErrMetadata; a peer without Metadata rejects the flag as
// a reserved bit.
func TestMetadataMalformed(t *testing.T) {
	for _, tt := range []struct {
		name    string
		meta    bool
		payload []byte
		want    error
	}{
		{"length past the payload", true, []byte{0x00, 0x09, 0x01}, rpc.ErrMetadata},
		{"truncated key", true, []byte{0x00, 0x02, 0x05, 'a', 0xc0}, rpc.ErrMetadata},
		{"no length", true, []byte{0x00}, rpc.ErrMetadata},
		{"flag not allowed", false, []byte{0x00, 0x00, 0xc0}, wire.ErrReservedFlags},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a, b := transport.Pipe()
			srv := rpc.NewConn(b, rpc.Options{Role: rpc.RoleChild, Handlers: newService().mux(), Metadata: tt.meta})
			defer srv.Close()
			frame := wire.Header{Method: mEcho, Flags: wire.FlagMeta, ID: 1, Len: uint32(len(tt.payload))}.Append(nil)
			go a.Write(append(frame, tt.payload...))
			<-srv.Done()
			if err := srv.Err(); !errors.Is(err, tt.want) || !errors.Is(err, rpc.ErrClosed) {
				t.Errorf("Err() = %v, want ErrClosed and %v", err, tt.want)
			}
			a.Close()
		})
	}
}

// TestObserverLargePayloads: metadata travels with large requests through
// the socket and through the shared-memory lane, to raw Payload handlers
// (whose large requests are read into reused buffers) and decoding ones.
func TestObserverLargePayloads(t *testing.T) {
	mux := new(rpc.Mux)
	mux.Handle(mEchoRaw, rpc.ResultFunc(func(_ context.Context, p rpc.Payload) ([]byte, error) {
		return p.Bytes, nil
	}).WithCodec(codec.Raw).Named("echoRaw"))
	mux.Handle(mEcho, rpc.ResultFunc(func(_ context.Context, b []byte) ([]byte, error) { return b, nil }).Named("echo"))
	for _, lane := range []bool{false, true} {
		t.Run(fmt.Sprintf("lane=%v", lane), func(t *testing.T) {
			cli, co, so := observedPairLane(t, true, lane, mux)
			big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
			for i := range 3 {
				var got []byte
				if err := cli.Call(t.Context(), rpc.Method{ID: mEchoRaw, Request: codec.Raw, Response: codec.Raw}, big, &got); err != nil || !bytes.Equal(got, big) {
					t.Fatalf("raw echo %d: %d bytes, %v", i, len(got), err)
				}
				got = nil
				if err := cli.Call(t.Context(), rpc.Method{ID: mEcho}, big, &got); err != nil || !bytes.Equal(got, big) {
					t.Fatalf("echo %d: %d bytes, %v", i, len(got), err)
				}
			}
			for range 6 {
				<-so.done
			}
			so.mu.Lock()
			defer so.mu.Unlock()
			for i, tp := range so.seen {
				if tp != co.inject {
					t.Errorf("server call %d saw traceparent %q, want %q", i, tp, co.inject)
				}
			}
		})
	}
}
