package rpc_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/rpc/wire"
	"github.com/procxy/procxy/transport"
)

func TestMain(m *testing.M) {
	if childMain() {
		return
	}
	goleak.VerifyTestMain(m)
}

func forEachTransport(t *testing.T, fn func(t *testing.T, tr string)) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) { fn(t, tr) })
	}
}

func TestCallKinds(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		s := newService()
		cli, _ := pair(t, tr, rpc.Options{Handlers: s.mux()}, rpc.Options{})
		ctx := t.Context()

		var got map[string]any
		if err := cli.Call(ctx, echo, map[string]any{"a": 1, "b": "x"}, &got); err != nil {
			t.Fatal(err)
		}
		if got["b"] != "x" || fmt.Sprint(got["a"]) != "1" {
			t.Errorf("echo = %v", got)
		}

		var raw []byte
		if err := cli.Call(ctx, echoRaw, []byte{0xde, 0xad}, &raw); err != nil || !bytes.Equal(raw, []byte{0xde, 0xad}) {
			t.Errorf("echoRaw = %x, %v", raw, err)
		}

		var sum int
		if err := cli.Call(ctx, add, addArgs{2, 3}, &sum); err != nil || sum != 5 {
			t.Errorf("add(2, 3) = %d, %v; want 5", sum, err)
		}

		var ack map[string]bool
		if err := cli.Call(ctx, accept, "job", &ack); err != nil || !ack["accepted"] {
			t.Errorf("accept = %v, %v", ack, err)
		}

		var seen []int
		for v, err := range rpc.StreamOf[int](ctx, cli, count, 5) {
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, v)
		}
		if fmt.Sprint(seen) != "[0 1 2 3 4]" {
			t.Errorf("count(5) = %v", seen)
		}

		if err := cli.Send(ctx, notify, "hello"); err != nil {
			t.Fatal(err)
		}
		if v := <-s.notified; v != "hello" {
			t.Errorf("notified %q", v)
		}
	})
}

func TestRemoteErrors(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		cli, _ := pair(t, tr, rpc.Options{Handlers: newService().mux()}, rpc.Options{})
		ctx := t.Context()

		err := cli.Call(ctx, fail, "bad input", nil)
		var re *rpc.RemoteError
		if !errors.As(err, &re) || re.Message != "bad input" || re.Code != "E_FAIL" {
			t.Errorf("fail: got %#v, want RemoteError{bad input, E_FAIL}", err)
		}
		if !errors.Is(err, &rpc.RemoteError{Code: "E_FAIL"}) {
			t.Errorf("errors.Is by code failed for %v", err)
		}

		err = cli.Call(ctx, panicker, nil, nil)
		if !errors.As(err, &re) || re.Name != "panic" || !strings.Contains(re.Message, "nil map") ||
			!strings.Contains(re.Stack, "rpc_test.(*service).mux") {
			t.Errorf("panic: got %v (stack %q)", err, re.Stack)
		}

		err = cli.Call(ctx, rpc.Method{ID: 999}, nil, nil)
		if !errors.Is(err, rpc.ErrUnknownMethod) || !errors.As(err, &re) || re.Message != "Unknown method ID: 999" {
			t.Errorf("unknown method: got %v", err)
		}

		// A payload the handler cannot decode (a string for an int).
		err = cli.Call(ctx, add, "not args", nil)
		if !isRemote(err, "bad_request") {
			t.Errorf("bad payload: got %v, want a bad_request RemoteError", err)
		}

		// A result the caller cannot decode.
		var n int
		err = cli.Call(ctx, echo, "text", &n)
		if err == nil || !strings.Contains(err.Error(), "decode response") {
			t.Errorf("undecodable result: got %v", err)
		}

		// The connection survived all of it.
		var sum int
		if err := cli.Call(ctx, add, addArgs{1, 1}, &sum); err != nil || sum != 2 {
			t.Errorf("after errors: add = %d, %v", sum, err)
		}
	})
}

func TestConcurrentCalls(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		cli, _ := pair(t, tr, rpc.Options{Handlers: newService().mux()}, rpc.Options{})
		const n = 10000
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				var sum int
				if err := cli.Call(t.Context(), add, addArgs{i, i}, &sum); err != nil {
					errs <- err
				} else if sum != 2*i {
					errs <- fmt.Errorf("add(%d, %d) = %d: answers crossed", i, i, sum)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if p := cli.Pending(); p != 0 {
			t.Errorf("%d calls still pending", p)
		}
	})
}

func TestAbortReachesHandler(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		s := newService()
		cli, srv := pair(t, tr, rpc.Options{Handlers: s.mux()}, rpc.Options{})
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { errc <- cli.Call(ctx, slow, 60_000, nil) }()
		for srv.Serving() == 0 { // wait until the handler runs
			time.Sleep(time.Millisecond)
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if ms := <-s.aborted; ms != 60_000 {
			t.Errorf("aborted handler got %d", ms)
		}
	})
}

func TestDeadline(t *testing.T) {
	cli, _ := pair(t, "pipe", rpc.Options{Handlers: newService().mux()}, rpc.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := cli.Call(ctx, slow, 10_000, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
}

func TestRequestIDWrap(t *testing.T) {
	// Watch the ids on the wire with a raw server.
	a, b := net.Pipe()
	cli := rpc.NewConn(a, rpc.Options{})
	defer cli.Close()
	defer b.Close()
	cli.SetNextID(0xFFFFFFFE)
	ids := make(chan uint32, 3)
	go func() {
		r, w := wire.NewReader(b, 0), wire.NewWriter(b)
		for range 3 {
			f, err := r.ReadFrame()
			if err != nil {
				return
			}
			ids <- f.ID
			w.WriteFrame(wire.Header{Method: f.Method, Flags: wire.FlagsResult, ID: f.ID}, []byte{0xc0})
		}
	}()
	for range 3 {
		if err := cli.Call(t.Context(), echo, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	got := []uint32{<-ids, <-ids, <-ids}
	if want := []uint32{0xFFFFFFFF, 1, 2}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ids = %x, want %x", got, want)
	}
}

// rawPeer returns a client Conn and the raw other end of its transport.
func rawPeer(t *testing.T, opts rpc.Options) (*rpc.Conn, net.Conn) {
	a, b := connPair(t, "unix")
	cli := rpc.NewConn(a, opts)
	t.Cleanup(func() { cli.Close(); b.Close() })
	return cli, b
}

// TestBadInput: each malformed input closes the connection with a clear
// error and fails the pending call at once.
func TestBadInput(t *testing.T) {
	tests := []struct {
		name  string
		frame []byte
		want  error
	}{
		{"3GiB", wire.Header{Method: 1, Flags: wire.FlagsResult, ID: 1, Len: 3 << 30}.Append(nil), wire.ErrPayloadTooLarge},
		{"reserved-bits", wire.Header{Method: 1, Flags: 0x40, ID: 1}.Append(nil), wire.ErrReservedFlags},
		{"method-0", wire.Header{Method: 0, Flags: wire.FlagsResult, ID: 1}.Append(nil), wire.ErrInvalidMethod},
		{"truncated", wire.Header{Method: 1, Flags: wire.FlagsResult, ID: 1, Len: 100}.Append(nil), io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cli, peer := rawPeer(t, rpc.Options{})
			errc := make(chan error, 1)
			go func() { errc <- cli.Call(t.Context(), echo, nil, nil) }()
			wire.NewReader(peer, 0).ReadFrame() // the request
			peer.Write(tt.frame)
			if tt.name == "truncated" {
				peer.Close()
			}
			err := <-errc
			if !errors.Is(err, rpc.ErrClosed) || !errors.Is(err, tt.want) {
				t.Fatalf("pending call: got %v, want ErrClosed wrapping %v", err, tt.want)
			}
			<-cli.Done()
			if err := cli.Call(t.Context(), echo, nil, nil); !errors.Is(err, rpc.ErrClosed) {
				t.Errorf("call after: got %v, want ErrClosed", err)
			}
		})
	}
}

// TestIgnoredFrames: frames the Procwire parent drops leave the connection up.
func TestIgnoredFrames(t *testing.T) {
	cli, peer := rawPeer(t, rpc.Options{})
	errc := make(chan error, 1)
	var out string
	go func() { errc <- cli.Call(t.Context(), echo, "x", &out) }()
	f, _ := wire.NewReader(peer, 0).ReadFrame()
	w := wire.NewWriter(peer)
	w.WriteFrame(wire.Header{Method: 1, Flags: wire.FlagsResult, ID: 12345}, []byte{0xc0})  // unknown id
	w.WriteFrame(wire.Header{Method: 1, Flags: wire.FlagsAck, ID: f.ID}, []byte{0xc0})      // ack for a result call
	w.WriteFrame(wire.Header{Method: 1, Flags: wire.FlagsStreamChunk, ID: f.ID}, []byte{1}) // stream chunk for a call
	w.WriteFrame(wire.Header{Method: 1, Flags: wire.FlagsResult, ID: 0}, []byte{0xc0})      // response without id
	w.WriteFrame(wire.Header{Method: 77, Flags: wire.FlagsEvent}, []byte{0xc0})             // event nobody listens to
	w.WriteFrame(wire.Header{Method: 1, Flags: wire.FlagsResult, ID: f.ID}, []byte{0xa2, 'o', 'k'})
	if err := <-errc; err != nil || out != "ok" {
		t.Fatalf("got %q, %v; want ok", out, err)
	}
}

// TestUnknownMethodBytes: the reply to an unknown method is byte for byte
// what the Procwire reference child sends (vector F05).
func TestUnknownMethodBytes(t *testing.T) {
	a, b := connPair(t, "unix")
	srv := rpc.NewConn(b, rpc.Options{Role: rpc.RoleChild})
	defer srv.Close()
	defer a.Close()
	wire.NewWriter(a).WriteFrame(wire.Header{Method: 99, ID: 5}, []byte{0xc0})
	want := "0063070000000500000016b5556e6b6e6f776e206d6574686f642049443a203939"
	got := make([]byte, len(want)/2)
	if _, err := io.ReadFull(a, got); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%x", got) != want {
		t.Errorf("reply = %x, want %s", got, want)
	}
}

func TestAuth(t *testing.T) {
	token := []byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
	t.Run("right", func(t *testing.T) {
		cli, _ := pair(t, "unix", rpc.Options{Handlers: newService().mux(), Token: token}, rpc.Options{Token: token})
		var sum int
		if err := cli.Call(t.Context(), add, addArgs{1, 2}, &sum); err != nil || sum != 3 {
			t.Fatalf("add = %d, %v", sum, err)
		}
	})
	for name, tok := range map[string][]byte{"wrong": []byte("nope"), "missing": nil} {
		t.Run(name, func(t *testing.T) {
			cli, srv := pair(t, "unix", rpc.Options{Handlers: newService().mux(), Token: token}, rpc.Options{Token: tok})
			err := cli.Call(t.Context(), add, addArgs{1, 2}, nil)
			if !errors.Is(err, rpc.ErrClosed) {
				t.Fatalf("got %v, want ErrClosed", err)
			}
			<-srv.Done()
			if !errors.Is(srv.Err(), rpc.ErrAuth) {
				t.Errorf("server: got %v, want ErrAuth", srv.Err())
			}
		})
	}
}

func TestEventsInOrder(t *testing.T) {
	got := make(chan int, 1000)
	m := new(rpc.Mux)
	m.Handle(1, rpc.SendFunc(func(_ context.Context, v int) error { got <- v; return nil }))
	// The parent listens; the child emits.
	_, child := pair(t, "unix", rpc.Options{}, rpc.Options{Handlers: m})
	for i := range 1000 {
		if err := child.Send(t.Context(), rpc.Method{ID: 1, Kind: rpc.KindNone}, i); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 1000 {
		if v := <-got; v != i {
			t.Fatalf("event %d arrived as %d", i, v)
		}
	}
}

func TestClose(t *testing.T) {
	s := newService()
	cli, srv := pair(t, "unix", rpc.Options{Handlers: s.mux()}, rpc.Options{})
	errc := make(chan error, 2)
	go func() { errc <- cli.Call(context.Background(), slow, 60_000, nil) }()
	for srv.Serving() == 0 {
		time.Sleep(time.Millisecond)
	}
	st, err := cli.OpenStream(t.Context(), infinite, 16)
	if err != nil {
		t.Fatal(err)
	}
	cli.Close()
	if err := <-errc; !errors.Is(err, rpc.ErrClosed) {
		t.Errorf("pending call: got %v, want ErrClosed", err)
	}
	for st.Next(new([]byte)) {
	}
	if !errors.Is(st.Err(), rpc.ErrClosed) {
		t.Errorf("open stream: got %v, want ErrClosed", st.Err())
	}
	if err := cli.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := cli.Call(t.Context(), add, addArgs{}, nil); !errors.Is(err, rpc.ErrClosed) {
		t.Errorf("call after Close: got %v", err)
	}
	<-srv.Done() // the server sees EOF and cancels its handlers
	if ms := <-s.aborted; ms != 60_000 {
		t.Errorf("server handler was not cancelled")
	}
}

func TestStreamBreakAborts(t *testing.T) {
	s := newService()
	cli, srv := pair(t, "unix", rpc.Options{Handlers: s.mux()}, rpc.Options{})
	n := 0
	for _, err := range rpc.StreamOf[[]byte](t.Context(), cli, infinite, 8) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 100 {
			break
		}
	}
	for srv.Serving() != 0 { // the producer's send fails and its handler returns
		time.Sleep(time.Millisecond)
	}
	if cli.Pending() != 0 {
		t.Errorf("stream still pending after break")
	}
}

func TestStreamError(t *testing.T) {
	m := new(rpc.Mux)
	m.Handle(1, rpc.StreamFunc(func(_ context.Context, _ any, send func(int) error) error {
		send(1)
		return errors.New("stream broke")
	}))
	cli, _ := pair(t, "pipe", rpc.Options{Handlers: m}, rpc.Options{})
	var got []int
	var last error
	for v, err := range rpc.StreamOf[int](t.Context(), cli, rpc.Method{ID: 1, Kind: rpc.KindStream}, nil) {
		if err != nil {
			last = err
			break
		}
		got = append(got, v)
	}
	var re *rpc.RemoteError
	if len(got) != 1 || !errors.As(last, &re) || re.Message != "stream broke" {
		t.Errorf("got %v then %v", got, last)
	}
}

func TestMisuse(t *testing.T) {
	cli, _ := pair(t, "pipe", rpc.Options{Handlers: newService().mux()}, rpc.Options{})
	if err := cli.Call(t.Context(), count, 1, nil); err == nil {
		t.Error("Call on a stream method succeeded")
	}
	if _, err := cli.OpenStream(t.Context(), echo, 1); err == nil {
		t.Error("OpenStream on a result method succeeded")
	}
	if err := cli.Call(t.Context(), echo, make(chan int), nil); err == nil || !strings.Contains(err.Error(), "encode") {
		t.Errorf("unencodable argument: got %v", err)
	}
	for _, id := range []uint16{0, 0xFFFE, 0xFFFF} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Handle(%#x) did not panic", id)
				}
			}()
			new(rpc.Mux).Handle(id, rpc.SendFunc(func(context.Context, any) error { return nil }))
		}()
	}
}

func TestAckWithoutData(t *testing.T) {
	cli, peer := rawPeer(t, rpc.Options{})
	errc := make(chan error, 1)
	out := "untouched"
	go func() { errc <- cli.Call(t.Context(), accept, nil, &out) }()
	f, _ := wire.NewReader(peer, 0).ReadFrame()
	wire.NewWriter(peer).WriteFrame(wire.Header{Method: f.Method, Flags: wire.FlagsAck, ID: f.ID}, nil) // F07
	if err := <-errc; err != nil || out != "untouched" {
		t.Fatalf("empty ack: got %q, %v", out, err)
	}
}

func TestRawLarge(t *testing.T) {
	cli, _ := pair(t, "unix", rpc.Options{Handlers: newService().mux()}, rpc.Options{})
	big := bytes.Repeat([]byte("0123456789abcdef"), 10<<20/16)
	var out []byte
	if err := cli.Call(t.Context(), echoRaw, big, &out); err != nil || !bytes.Equal(out, big) {
		t.Fatalf("10 MiB echo: %d bytes, %v", len(out), err)
	}
	_ = codec.Raw
}

// TestSlowConsumerPipe: over an in-memory pipe, a consumer that stops
// reading stops the producer after the stream buffer and the pipe's own
// buffer are full, and heap stays flat while 128 MiB flow afterwards.
func TestSlowConsumerPipe(t *testing.T) {
	const chunk, buffer = 64 << 10, 16
	s := newService()
	cli, _ := pair(t, "pipe", rpc.Options{Handlers: s.mux()}, rpc.Options{StreamBuffer: buffer})
	st, err := cli.OpenStream(t.Context(), infinite, chunk)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var b []byte
	if !st.Next(&b) {
		t.Fatal(st.Err())
	}
	// The producer reports each chunk; it is stuck once no report comes for a while.
	produced := 0
	for {
		select {
		case n := <-s.produced:
			produced = n
			continue
		case <-time.After(200 * time.Millisecond):
		}
		break
	}
	limit := buffer + 4 + transport.PipeBufferSize/chunk // + the consumer's, the reader's and the writer's chunk in hand
	t.Logf("producer stalled after %d chunks of %d KiB (limit %d)", produced, chunk>>10, limit)
	if produced > limit {
		t.Errorf("producer ran %d chunks ahead of a stopped consumer, want at most %d", produced, limit)
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapInuse
	for range 2048 {
		if !st.Next(&b) || len(b) != chunk {
			t.Fatalf("chunk: %d bytes, %v", len(b), st.Err())
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("heap in use %d → %d KiB while 128 MiB streamed", before>>10, ms.HeapInuse>>10)
	if grow := int64(ms.HeapInuse) - int64(before); grow > 16<<20 {
		t.Errorf("heap grew by %d KiB", grow>>10)
	}
}

// TestCloseCancelsFireAndForget: Close cancels handlers of fire-and-forget
// requests and events too, so it never waits for ever.
func TestCloseCancelsFireAndForget(t *testing.T) {
	started := make(chan struct{}, 2)
	m := new(rpc.Mux)
	m.Handle(1, rpc.SendFunc(func(ctx context.Context, _ any) error {
		started <- struct{}{}
		<-ctx.Done()
		return nil
	}))
	// The child serves a fire-and-forget request; the parent serves an event.
	cli, srv := pair(t, "pipe", rpc.Options{Handlers: m}, rpc.Options{Handlers: m})
	cli.Send(t.Context(), rpc.Method{ID: 1, Kind: rpc.KindNone}, nil)
	srv.Send(t.Context(), rpc.Method{ID: 1, Kind: rpc.KindNone}, nil)
	<-started
	<-started
	srv.Close()
	cli.Close()
}

func TestMethodTimeout(t *testing.T) {
	s := newService()
	cli, _ := pair(t, "pipe", rpc.Options{Handlers: s.mux()}, rpc.Options{})
	m := slow
	m.Timeout = 50 * time.Millisecond
	if err := cli.Call(t.Context(), m, 10_000, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want context.DeadlineExceeded", err)
	}
	if ms := <-s.aborted; ms != 10_000 {
		t.Errorf("the handler was not aborted")
	}
	// The connection's timer does not fire for calls that ended.
	m.Timeout = time.Minute
	for range 5 {
		var n int
		if err := cli.Call(t.Context(), m, 1, &n); err != nil || n != 1 {
			t.Fatalf("after a timeout: %d, %v", n, err)
		}
	}
}

// TestMethodTimeoutEarlier: a call with a short timeout times out while a
// call with a long one is pending (the timer moves to the earlier deadline).
func TestMethodTimeoutEarlier(t *testing.T) {
	s := newService()
	cli, _ := pair(t, "unix", rpc.Options{Handlers: s.mux()}, rpc.Options{})
	long, short := slow, slow
	long.Timeout, short.Timeout = time.Hour, 50*time.Millisecond
	longDone := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { longDone <- cli.Call(ctx, long, 3_600_000, nil) }()
	if err := cli.Call(t.Context(), short, 3_600_000, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("short call: got %v, want context.DeadlineExceeded", err)
	}
	cancel()
	if err := <-longDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("long call: got %v, want context.Canceled", err)
	}
}

// TestBlockingHandlerDoesNotStallReading: a handler served on the reading
// goroutine that blocks until another request arrives must not stop that
// request from being read (the read turn moves on).
func TestBlockingHandlerDoesNotStallReading(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		gate := make(chan struct{})
		mux := new(rpc.Mux)
		mux.Handle(1, rpc.ResultFunc(func(ctx context.Context, _ int) (int, error) {
			select {
			case <-gate:
				return 1, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}))
		mux.Handle(2, rpc.ResultFunc(func(context.Context, int) (int, error) { close(gate); return 2, nil }))
		cli, _ := pair(t, tr, rpc.Options{Handlers: mux}, rpc.Options{})
		first := make(chan error, 1)
		go func() { first <- cli.Call(t.Context(), rpc.Method{ID: 1}, 0, nil) }()
		if err := cli.Call(t.Context(), rpc.Method{ID: 2}, 0, nil); err != nil {
			t.Fatal(err)
		}
		if err := <-first; err != nil {
			t.Fatal(err)
		}
	})
}

// TestNestedCall: a handler that calls back into the peer on the same
// connection while serving (the caller side serves too) gets its answer.
func TestNestedCall(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		a, b := connPair(t, tr)
		cliMux := new(rpc.Mux)
		cliMux.Handle(7, rpc.ResultFunc(func(_ context.Context, n int) (int, error) { return n * 10, nil }))
		var srv *rpc.Conn
		srvMux := new(rpc.Mux)
		srvMux.Handle(1, rpc.ResultFunc(func(ctx context.Context, n int) (int, error) {
			var got int
			err := srv.Call(ctx, rpc.Method{ID: 7}, n, &got)
			return got + 1, err
		}))
		srv = rpc.NewConn(b, rpc.Options{Role: rpc.RoleChild, Handlers: srvMux})
		cli := rpc.NewConn(a, rpc.Options{Role: rpc.RoleParent, Handlers: cliMux})
		defer srv.Close()
		defer cli.Close()
		for i := range 20 {
			var got int
			if err := cli.Call(t.Context(), rpc.Method{ID: 1}, i, &got); err != nil || got != i*10+1 {
				t.Fatalf("call %d: %d, %v; want %d", i, got, err, i*10+1)
			}
		}
	})
}

// TestCancelWhileReading: a caller whose context ends while it is the one
// reading the connection returns at once; calls after it are unaffected,
// including one whose answer was in flight.
func TestCancelWhileReading(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		started, aborted := make(chan struct{}, 1), make(chan struct{}, 1)
		mux := new(rpc.Mux)
		mux.Handle(1, rpc.ResultFunc(func(ctx context.Context, _ int) (int, error) {
			started <- struct{}{}
			<-ctx.Done()
			aborted <- struct{}{}
			return 0, ctx.Err()
		}))
		mux.Handle(2, rpc.ResultFunc(func(_ context.Context, n int) (int, error) { return n, nil }))
		cli, _ := pair(t, tr, rpc.Options{Handlers: mux}, rpc.Options{})
		for i := range 20 {
			ctx, cancel := context.WithCancel(t.Context())
			errc := make(chan error, 1)
			go func() { errc <- cli.Call(ctx, rpc.Method{ID: 1}, 0, nil) }()
			<-started // the call is in flight; its caller is likely the one reading
			other := make(chan error, 1)
			go func() {
				var n int
				err := cli.Call(t.Context(), rpc.Method{ID: 2}, i, &n)
				if err == nil && n != i {
					err = fmt.Errorf("got %d, want %d", n, i)
				}
				other <- err
			}()
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Fatalf("round %d: cancelled call: %v", i, err)
			}
			if err := <-other; err != nil {
				t.Fatalf("round %d: other call: %v", i, err)
			}
			<-aborted // the abort frame reached the handler
		}
	})
}

// TestPayloadReuse: a raw Payload handler gets large requests in buffers
// the connection reuses after each reply; replies are intact even with many
// calls in flight, and sizes change from call to call.
func TestPayloadReuse(t *testing.T) {
	forEachTransport(t, func(t *testing.T, tr string) {
		mux := new(rpc.Mux)
		var owned atomic.Bool
		mux.Handle(1, rpc.ResultFunc(func(_ context.Context, p rpc.Payload) ([]byte, error) {
			if p.Owned {
				owned.Store(true)
			}
			return p.Bytes, nil
		}).WithCodec(codec.Raw))
		cli, _ := pair(t, tr, rpc.Options{Handlers: mux}, rpc.Options{})
		m := rpc.Method{ID: 1, Request: codec.Raw, Response: codec.Raw}
		var wg sync.WaitGroup
		for g := range 8 {
			wg.Go(func() {
				for i := range 10 {
					n := (64 << 10) + 1 + (g*10+i)*37_001
					in := bytes.Repeat([]byte{byte(g*10 + i)}, n)
					var out []byte
					if err := cli.Call(t.Context(), m, in, &out); err != nil {
						t.Error(err)
						return
					}
					if !bytes.Equal(out, in) {
						t.Errorf("goroutine %d call %d: %d bytes came back different", g, i, n)
						return
					}
				}
			})
		}
		wg.Wait()
		if owned.Load() {
			t.Fatal("a large raw payload was Owned: it was not read into a reused buffer")
		}
	})
}
