package host_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/rpc"
)

type (
	countOut struct {
		I int `msgpack:"i"`
	}
	slowOut struct {
		Slept int `msgpack:"slept"`
	}
	progress struct {
		Aborted bool `msgpack:"aborted"`
		Slept   int  `msgpack:"slept"`
	}
	acceptOut struct {
		Accepted bool `msgpack:"accepted"`
	}
)

// TestInterop drives one long-lived worker of each kind — the Node.js
// worker on @procwire/client 1.3.1 and the Go examples/echoworker —
// through every method, events, abort, heartbeat and the request id wrap.
// Both run with a 50 ms / 500 ms heartbeat the whole time.
func TestInterop(t *testing.T) {
	for _, kind := range []func(testing.TB) workerKind{nodeWorker, goWorker} {
		w := kind(t)
		t.Run(w.name, func(t *testing.T) { interopSuite(t, w) })
	}
}

func interopSuite(t *testing.T, w workerKind) {
	sink := newLogSink()
	cfg := config(w, sink)
	cfg.Env = append(cfg.Env, "HOST_TEST_FOO=bar", "PROCWIRE_TOKEN=must-not-reach-the-child", "PROCXY_WORKER_NOISE=1")
	cfg.Policy.Heartbeat = host.Heartbeat{Interval: 50 * time.Millisecond, Timeout: 500 * time.Millisecond}
	m, chs := newModule(t, cfg)
	host.SetNextID(m, 0xFFFFFFFC) // the first requests cross the wrap to 1
	conn := taps(m, false)
	var pongs atomic.Int64
	pongWake := make(chan struct{}, 1)
	host.OnPong(m, func() {
		pongs.Add(1)
		select {
		case pongWake <- struct{}{}:
		default:
		}
	})
	start := time.Now()
	if err := m.Spawn(t.Context()); err != nil {
		t.Fatal(err)
	}
	spawned := time.Since(start)
	if _, err := host.Call[any](t.Context(), m, "echo", "first"); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: spawn %v, spawn→first call %v", w.name, spawned, time.Since(start))
	ctx := t.Context()
	method := func(name string) uint16 { // the wire id of a method, from the first request seen
		return map[string]uint16{"echo": 1, "echoRaw": 2, "fail": 3, "count": 4, "slow": 5, "accept": 6, "notify": 7, "getenv": 8, "crash": 9}[name]
	}

	t.Run("request id wrap", func(t *testing.T) {
		for i := range 6 {
			got, err := host.Call[string](ctx, m, "echo", fmt.Sprint("wrap ", i))
			if err != nil || got != fmt.Sprint("wrap ", i) {
				t.Fatalf("echo %d = %q, %v", i, got, err)
			}
		}
		var ids []uint32
		for _, f := range conn().all() {
			if f.Out && f.Method == method("echo") {
				ids = append(ids, f.ID)
			}
		}
		want := []uint32{0xFFFFFFFC, 0xFFFFFFFD, 0xFFFFFFFE, 0xFFFFFFFF, 1, 2, 3}
		if !reflect.DeepEqual(ids, want) {
			t.Errorf("request ids on the wire = %#x, want %#x", ids, want)
		}
		for _, id := range []uint32{0xFFFFFFFF, 1} {
			conn().wait(t, fmt.Sprintf("result for id %#x", id), func(f frame) bool { return !f.Out && f.ID == id && f.Flags == 0x03 })
		}
	})

	t.Run("echo", func(t *testing.T) {
		when := time.Date(2024, 6, 15, 12, 30, 45, 123e6, time.UTC)
		for _, in := range []any{
			nil, true, int64(-33), int64(1) << 40, 1.5, "zażółć", []byte{1, 2, 3},
			[]any{int64(1), "b", nil}, when,
			map[string]any{"a": int64(1), "b": "x", "c": []any{int64(1), int64(2), int64(3)}},
		} {
			got, err := host.Call[any](ctx, m, "echo", in)
			if err != nil || !reflect.DeepEqual(got, in) {
				t.Errorf("echo(%#v) = %#v, %v", in, got, err)
			}
		}
	})

	t.Run("echoRaw", func(t *testing.T) {
		for _, in := range [][]byte{{0xde, 0xad, 0xbe, 0xef}, {}, bytes.Repeat([]byte{7}, 1<<20)} {
			got, err := host.Call[[]byte](ctx, m, "echoRaw", in)
			if err != nil || !bytes.Equal(got, in) {
				t.Errorf("echoRaw(%d bytes) = %d bytes, %v", len(in), len(got), err)
			}
		}
	})

	t.Run("CallInto", func(t *testing.T) {
		buf := make([]byte, 0, 2<<20)
		for _, in := range [][]byte{{1, 2}, bytes.Repeat([]byte{9}, 100<<10), bytes.Repeat([]byte{8}, 2<<20)} {
			out := buf
			if err := host.CallInto(ctx, m, "echoRaw", in, &out); err != nil || !bytes.Equal(out, in) {
				t.Fatalf("CallInto echoRaw(%d bytes) = %d bytes, %v", len(in), len(out), err)
			}
			if unsafe.SliceData(out) != unsafe.SliceData(buf) {
				t.Errorf("%d bytes: the result was not read into the caller's buffer", len(in))
			}
		}
	})

	t.Run("fail", func(t *testing.T) {
		_, err := host.Call[any](ctx, m, "fail", map[string]any{"message": "bad input"})
		var re *rpc.RemoteError
		if !errors.As(err, &re) || re.Message != "bad input" {
			t.Fatalf("fail: got %v, want a RemoteError with message %q", err, "bad input")
		}
	})

	t.Run("count", func(t *testing.T) {
		for _, n := range []int{5, 0, 2000} { // 2000 passes the 256-chunk buffer
			var got []int
			for c, err := range host.Stream[countOut](ctx, m, "count", map[string]int{"n": n}) {
				if err != nil {
					t.Fatalf("count(%d): %v", n, err)
				}
				got = append(got, c.I)
			}
			if len(got) != n {
				t.Fatalf("count(%d) = %v", n, got)
			}
			for i, v := range got {
				if v != i {
					t.Fatalf("count(%d) = %v", n, got)
				}
			}
		}
	})

	t.Run("count aborted by break", func(t *testing.T) {
		seen := 0
		for _, err := range host.Stream[countOut](ctx, m, "count", map[string]int{"n": 1_000_000}) {
			if err != nil {
				t.Fatal(err)
			}
			if seen++; seen == 3 {
				break
			}
		}
		req := lastOut(conn(), method("count"))
		conn().wait(t, "abort of the stream", func(f frame) bool { return f.Out && f.Method == methodAbort && f.ID == req.ID })
		if got, err := host.Call[string](ctx, m, "echo", "after"); err != nil || got != "after" {
			t.Fatalf("echo after abort = %q, %v", got, err)
		}
	})

	t.Run("slow", func(t *testing.T) {
		got, err := host.Call[slowOut](ctx, m, "slow", map[string]int{"ms": 5})
		if err != nil || got.Slept != 5 {
			t.Fatalf("slow = %+v, %v", got, err)
		}
	})

	t.Run("abort", func(t *testing.T) {
		aborted := make(chan progress, 1)
		defer host.OnEvent(m, "progress", func(p progress) {
			if p.Aborted {
				aborted <- p
			}
		})()
		cctx, cancel := context.WithCancel(ctx)
		res := make(chan error, 1)
		before := len(conn().all())
		go func() {
			_, err := host.Call[slowOut](cctx, m, "slow", map[string]int{"ms": 60_000})
			res <- err
		}()
		req := conn().waitFrom(t, before, "slow request", func(f frame) bool { return f.Out && f.Method == method("slow") && f.ID != 0 })
		cancel()
		if err := <-res; !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled slow: got %v, want context.Canceled", err)
		}
		conn().wait(t, "abort frame", func(f frame) bool { return f.Out && f.Method == methodAbort && f.ID == req.ID && f.Len == 0 })
		p := <-aborted // the child saw the abort and stopped
		t.Logf("child stopped slow after %d ms", p.Slept)
	})

	t.Run("accept", func(t *testing.T) {
		got, err := host.Call[acceptOut](ctx, m, "accept", nil)
		if err != nil || !got.Accepted {
			t.Fatalf("accept = %+v, %v", got, err)
		}
		if f := lastOut(conn(), method("accept")); f.Len != 1 {
			t.Errorf("a nil request went out with %d payload bytes, want 1 (msgpack nil, c0)", f.Len)
		}
		if f := conn().wait(t, "the ack", func(f frame) bool { return !f.Out && f.Method == method("accept") }); f.Flags != 0x23 {
			t.Errorf("accept answered with flags %#x, want 0x23 (ack)", f.Flags)
		}
	})

	t.Run("notify and events", func(t *testing.T) {
		got := make(chan map[string]any, 1)
		defer host.OnEvent(m, "notified", func(v map[string]any) { got <- v })()
		if err := host.Send(ctx, m, "notify", map[string]any{"x": int64(1)}); err != nil {
			t.Fatal(err)
		}
		if v := <-got; !reflect.DeepEqual(v, map[string]any{"x": int64(1)}) {
			t.Fatalf("notified = %v", v)
		}
		f := lastOut(conn(), method("notify"))
		if f.ID != 0 {
			t.Errorf("notify went out with request id %d, want 0", f.ID)
		}
	})

	t.Run("getenv", func(t *testing.T) {
		for name, want := range map[string]*string{
			"HOST_TEST_FOO":        ptr("bar"),
			"PROCWIRE_MODULE_NAME": ptr(w.name),
			"PROCWIRE_TOKEN":       nil, // removed when auth is off
		} {
			got, err := host.Call[*string](ctx, m, "getenv", map[string]string{"name": name})
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("getenv(%s) = %v, %v; want %v", name, deref(got), err, deref(want))
			}
		}
	})

	t.Run("wrong calls", func(t *testing.T) {
		if _, err := host.Call[any](ctx, m, "nope", nil); !errors.Is(err, host.ErrUnknownMethod) {
			t.Errorf("Call(nope): got %v, want ErrUnknownMethod", err)
		}
		if _, err := host.Call[any](ctx, m, "count", nil); !errors.Is(err, host.ErrWrongKind) {
			t.Errorf("Call(count): got %v, want ErrWrongKind", err)
		}
		for _, err := range host.Stream[any](ctx, m, "echo", nil) {
			if !errors.Is(err, host.ErrWrongKind) {
				t.Errorf("Stream(echo): got %v, want ErrWrongKind", err)
			}
		}
		if err := host.Send(ctx, m, "echo", nil); !errors.Is(err, host.ErrWrongKind) {
			t.Errorf("Send(echo): got %v, want ErrWrongKind", err)
		}
	})

	t.Run("concurrency", func(t *testing.T) {
		var wg sync.WaitGroup
		for i := range 300 {
			wg.Go(func() {
				if i%10 == 0 {
					got, err := host.Call[slowOut](ctx, m, "slow", map[string]int{"ms": i % 20})
					if err != nil || got.Slept != i%20 {
						t.Errorf("slow %d = %+v, %v", i, got, err)
					}
					return
				}
				got, err := host.Call[int](ctx, m, "echo", i)
				if err != nil || got != i {
					t.Errorf("echo %d = %d, %v", i, got, err)
				}
			})
		}
		wg.Wait()
	})

	t.Run("heartbeat idle and under load", func(t *testing.T) {
		waitPongs := func(n int64) {
			t.Helper()
			target := pongs.Load() + n
			deadline := time.NewTimer(20 * time.Second)
			defer deadline.Stop()
			for pongs.Load() < target {
				select {
				case <-pongWake:
				case <-deadline.C:
					t.Fatalf("only %d pongs after 20s, want %d", pongs.Load(), target)
				}
			}
		}
		waitPongs(20) // about 1 s idle
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := host.Call[[]byte](ctx, m, "echoRaw", bytes.Repeat([]byte{1}, 64<<10)); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
		waitPongs(20) // about 1 s under load
		close(stop)
		wg.Wait()
		if st := m.State(); st != host.StateReady {
			t.Fatalf("state %v after heartbeats, want ready", st)
		}
	})

	t.Run("child output is logged", func(t *testing.T) {
		if w.name != "node" {
			t.Skip("only the Node worker prints noise on request")
		}
		r := sink.output(t, "stdout", "plain text on stdout before $init")
		if r.Attrs["module"] != w.name || r.Level != slog.LevelInfo {
			t.Errorf("stdout record = %+v, want module=%s at Info", r, w.name)
		}
		sink.output(t, "stderr", "a line on stderr before $init")
	})

	// Nothing but the spawn happened to the module's state.
	for _, c := range chs.all() {
		if c.To != host.StateStarting && c.To != host.StateConnecting && c.To != host.StateReady {
			t.Errorf("unexpected change %v", c)
		}
	}
	start = time.Now()
	if err := m.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: $shutdown took %v", w.name, time.Since(start))
}

// lastOut returns the last request frame for method sent to the child.
func lastOut(t *tap, method uint16) frame {
	var last frame
	for _, f := range t.all() {
		if f.Out && f.Method == method {
			last = f
		}
	}
	return last
}

func ptr[T any](v T) *T { return &v }

func deref(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}
