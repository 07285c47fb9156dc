package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/procxy/procxy/observe"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/transport"
	"github.com/procxy/procxy/worker"
)

// TestInitLine: the $init line is byte-identical to the one captured from
// the reference child (§11.5) apart from the socket path: member order,
// ids from 1 in registration order, events numbered separately, no codec
// in the schema. The socket is already listening when the line is read, and
// its file is a socket only the owner can use.
func TestInitLine(t *testing.T) {
	h := start(t, worker.Options{}, func(w *worker.Worker) {
		worker.Result(w, "echo", func(_ context.Context, v any) (any, error) { return v, nil })
		worker.Stream(w, "generate", func(context.Context, any, func(int) error) error { return nil })
		worker.Ack(w, "enqueue", func(context.Context, any) (any, error) { return nil, nil })
		worker.None(w, "log", func(context.Context, any) error { return nil })
		worker.Result(w, "blob", func(_ context.Context, b []byte) ([]byte, error) { return b, nil }, worker.WithCodec(codec.Raw))
		worker.Event[any](w, "progress")
		worker.Event[any](w, "status")
	})
	const ref = `{"jsonrpc":"2.0","method":"$init","params":{"pipe":"/run/user/1000/procwire-8969-bb814684b1d4a9838da45b3c2b4eb697.sock","schema":{"methods":{"echo":{"id":1,"response":"result"},"generate":{"id":2,"response":"stream"},"enqueue":{"id":3,"response":"ack"},"log":{"id":4,"response":"none"},"blob":{"id":5,"response":"result"}},"events":{"progress":{"id":1},"status":{"id":2}}},"version":"1.0.0"}}`
	pipe, _ := json.Marshal(h.pipe)
	want := strings.Replace(ref, `"/run/user/1000/procwire-8969-bb814684b1d4a9838da45b3c2b4eb697.sock"`, string(pipe), 1)
	if h.init != want {
		t.Errorf("$init:\n got %s\nwant %s", h.init, want)
	}
	fi, err := os.Stat(h.pipe)
	if err != nil || fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("socket file: %v, %v; want a socket with no group/other access", fi.Mode(), err)
	}
	// Listening before $init: the parent's only connect attempt succeeds.
	c, err := net.Dial("unix", h.pipe)
	if err != nil {
		t.Fatalf("connect right after $init: %v", err)
	}
	c.Close()
}

// TestInitOptions: WithTimeout adds the timeout member the parent honours
// (§9.1), and names are escaped as JSON.stringify escapes them.
func TestInitOptions(t *testing.T) {
	name := "a\"b\\c<>&\u2028\n\x01é"
	h := start(t, worker.Options{}, func(w *worker.Worker) {
		worker.Result(w, "t", func(context.Context, any) (any, error) { return nil, nil }, worker.WithTimeout(150*time.Millisecond))
		worker.Ack(w, "off", func(context.Context, any) (any, error) { return nil, nil }, worker.WithTimeout(0))
		worker.Result(w, name, func(context.Context, any) (any, error) { return nil, nil })
	})
	want := `"methods":{"t":{"id":1,"response":"result","timeout":150},"off":{"id":2,"response":"ack","timeout":0},` +
		`"a\"b\\c<>&` + "\u2028" + `\n\u0001é":{"id":3,"response":"result"}},"events":{}}`
	if !strings.Contains(h.init, want) {
		t.Errorf("$init = %s\nwant it to contain %s", h.init, want)
	}
	var msg struct {
		Params struct {
			Schema struct{ Methods map[string]any }
		}
	}
	if err := json.Unmarshal([]byte(h.init), &msg); err != nil || msg.Params.Schema.Methods[name] == nil {
		t.Errorf("$init does not decode to the method name %q: %v", name, err)
	}
}

// TestControlLines: every $ping gets one $pong; lines not starting with '{',
// invalid JSON, other methods and overlong lines are ignored; extra members
// do not matter (§4.6). Nothing but $init and $pong reaches stdout.
func TestControlLines(t *testing.T) {
	h, _ := startService(t, worker.Options{})
	p := h.dial(nil)
	p.writeHex("0001000000000100000001 01") // a session with traffic and events
	p.frame()
	p.writeHex("000a000000000200000001 c0")
	p.frame()
	p.frame()
	h.send(`  {"jsonrpc":"2.0","method":"$ping"}`)
	h.send(`not json`)
	h.send(`{"jsonrpc":"2.0","method":"$ping"`)
	h.send(`{"jsonrpc":"2.0","method":"$unknown"}`)
	h.send(`{"jsonrpc":"2.0","method":5}`)
	h.send(`{"jsonrpc":"2.0","method":"$ping","pad":"` + strings.Repeat("x", 70<<10) + `"}`)
	h.send(`{"jsonrpc":"2.0","method":"$ping","id":5}`)
	h.send(`{"jsonrpc":"2.0","method":"$ping"}` + "\r")
	h.send(`{"jsonrpc":"2.0","method":"$shutdown","params":{}}`)
	if err := h.wait(); err != nil {
		t.Errorf("Run = %v, want nil after $shutdown", err)
	}
	pong := `{"jsonrpc":"2.0","method":"$pong"}`
	if got := h.rest(); len(got) != 2 || got[0] != pong || got[1] != pong {
		t.Errorf("stdout after $init: %q, want exactly two $pong lines", got)
	}
}

// TestShutdown: $shutdown closes the connection and the listener, removes
// the socket file, cancels running handlers and makes Run return nil.
func TestShutdown(t *testing.T) {
	h, s := startService(t, worker.Options{})
	p := h.dial(nil)
	p.writeHex("000b000000000100000001 01") // slow(1): runs until cancelled
	p.writeHex("0001000000000200000001 02")
	p.frame() // the echo reply: slow is running by now
	s.free()  // slow returns as soon as it is cancelled
	start := time.Now()
	h.send(`{"jsonrpc":"2.0","method":"$shutdown","params":{}}`)
	recv(t, s.aborted, "the running handler to be cancelled")
	if err := h.wait(); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	t.Logf("$shutdown to Run returning: %v", time.Since(start))
	if _, err := os.Stat(h.pipe); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after $shutdown: %v, want it removed", err)
	}
	p.closed()
}

// TestStdinEOF: the end of stdin (the parent died) ends the session like
// $shutdown, also before the parent connected.
func TestStdinEOF(t *testing.T) {
	h := start(t, worker.Options{}, nil)
	h.stdin.Close()
	if err := h.wait(); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if _, err := os.Stat(h.pipe); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file: %v, want it removed", err)
	}
}

// TestConnectionLost: when the parent's connection closes, in-flight
// handlers are cancelled and the session ends; there is no reconnection.
func TestConnectionLost(t *testing.T) {
	h, s := startService(t, worker.Options{})
	p := h.dial(nil)
	p.writeHex("000b000000000100000001 07")
	p.writeHex("0001000000000200000001 02")
	p.frame()
	s.free()
	p.c.Close()
	if got := recv(t, s.aborted, "the handler to be cancelled"); got != 7 {
		t.Errorf("cancelled handler input = %d, want 7", got)
	}
	if err := h.wait(); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	if _, err := net.Dial("unix", h.pipe); err == nil {
		t.Error("a new connection was accepted after the session ended")
	}
}

// TestContextCancel: cancelling Run's context ends the session with ctx.Err().
func TestContextCancel(t *testing.T) {
	h := start(t, worker.Options{}, nil)
	h.dial(nil)
	h.cancel()
	if err := h.wait(); !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
}

// TestStopGrace: a handler that ignores its cancelled context delays Run
// by StopGrace only, and Run says so.
func TestStopGrace(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	h := start(t, worker.Options{StopGrace: 50 * time.Millisecond}, func(w *worker.Worker) {
		worker.Result(w, "stuck", func(context.Context, any) (any, error) {
			close(started)
			<-release // ignores ctx
			return nil, nil
		})
	})
	t.Cleanup(func() { close(release) }) // lets the abandoned handler finish before the leak check
	p := h.dial(nil)
	p.writeHex("0001000000000100000001 c0")
	recv(t, started, "the handler to start")
	h.send(`{"jsonrpc":"2.0","method":"$shutdown"}`)
	if err := h.wait(); !errors.Is(err, worker.ErrStopGrace) {
		t.Errorf("Run = %v, want ErrStopGrace", err)
	}
}

// TestRunTwice: a Worker runs once.
func TestRunTwice(t *testing.T) {
	h := start(t, worker.Options{}, nil)
	if err := h.w.Run(t.Context()); !errors.Is(err, worker.ErrRunning) {
		t.Errorf("second Run = %v, want ErrRunning", err)
	}
}

// TestNoneCancelled: a fire-and-forget handler's context is cancelled when
// the session ends, so it cannot hold up the drain.
func TestNoneCancelled(t *testing.T) {
	started, ended := make(chan struct{}), make(chan struct{})
	h := start(t, worker.Options{StopGrace: -1}, func(w *worker.Worker) {
		worker.None(w, "wait", func(ctx context.Context, _ any) error {
			close(started)
			<-ctx.Done()
			close(ended)
			return nil
		})
	})
	p := h.dial(nil)
	p.writeHex("0001000000000000000001 c0")
	recv(t, started, "the handler to start")
	p.c.Close()
	if err := h.wait(); err != nil {
		t.Errorf("Run = %v, want nil", err)
	}
	recv(t, ended, "the handler to return")
}

// TestListenError: when the socket cannot be created, Run tells the parent
// why with a $error line instead of $init (§4.7) and returns the error.
func TestListenError(t *testing.T) {
	xdg := filepath.Join(t.TempDir(), strings.Repeat("d", 100)) // too long for a socket path
	if err := os.Mkdir(xdg, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	var out bytes.Buffer
	w := worker.New(worker.Options{Stdin: strings.NewReader(""), Stdout: &out, Logger: slog.New(slog.DiscardHandler)})
	err := w.Run(t.Context())
	if !errors.Is(err, transport.ErrPathTooLong) {
		t.Errorf("Run = %v, want an error wrapping transport.ErrPathTooLong", err)
	}
	var msg struct {
		Method string
		Params struct{ Message string }
	}
	if json.Unmarshal(out.Bytes(), &msg) != nil || msg.Method != "$error" || !strings.Contains(msg.Params.Message, "too long") {
		t.Errorf("stdout = %q, want a $error line saying the path is too long", out.String())
	}
}

// nopObserver is an observe.Observer that does nothing.
type nopObserver struct{}

func (nopObserver) CallStart(ctx context.Context, _ *observe.Call) context.Context { return ctx }
func (nopObserver) CallEnd(context.Context, *observe.Call)                         {}
func (nopObserver) Child(observe.ChildEvent)                                       {}

// TestInitMetadata: a worker with an Observer announces that it takes
// request metadata, after the members of the reference $init.
func TestInitMetadata(t *testing.T) {
	h := start(t, worker.Options{Observer: nopObserver{}}, func(w *worker.Worker) {
		worker.Result(w, "echo", func(_ context.Context, v any) (any, error) { return v, nil })
	})
	if !strings.HasSuffix(h.init, `"version":"1.0.0","procxy":{"metadata":true}}}`) {
		t.Errorf("$init = %s, want it to end with the procxy member", h.init)
	}
}
