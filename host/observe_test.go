package host_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/observe"
)

const testTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// parentObserver injects a traceparent where it can and records calls
// (with whether they had a Carrier) and child events.
type parentObserver struct {
	mu       sync.Mutex
	calls    []observe.Call       // guarded by mu
	carriers []bool               // guarded by mu
	events   []observe.ChildEvent // guarded by mu
}

func (o *parentObserver) CallStart(ctx context.Context, c *observe.Call) context.Context {
	if c.Carrier != nil {
		c.Carrier.Set("traceparent", testTraceparent)
	}
	return ctx
}

func (o *parentObserver) CallEnd(_ context.Context, c *observe.Call) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.carriers = append(o.carriers, c.Carrier != nil)
	cp := *c
	cp.Carrier = nil
	o.calls = append(o.calls, cp)
}

func (o *parentObserver) Child(e observe.ChildEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, e)
}

// TestObserver: a module's Observer sees its calls and its child's spawn
// and exit; a Go worker with an Observer gets the trace context with each
// call; the Node.js worker gets none (Procwire has no place for it) and
// works as before.
func TestObserver(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "obsworker")
	if out, err := exec.Command("go", "build", "-o", exe, "./testdata/obsworker").CombinedOutput(); err != nil {
		t.Fatalf("go build testdata/obsworker: %v\n%s", err, out)
	}
	for _, w := range []workerKind{{name: "obsworker", path: exe}, nodeWorker(t)} {
		t.Run(w.name, func(t *testing.T) {
			sink := newLogSink()
			ob := &parentObserver{}
			cfg := config(w, sink)
			cfg.Methods = []host.Method{{Name: "echo"}}
			cfg.Events = nil
			cfg.Observer = ob
			m, _ := spawn(t, cfg)
			if got, err := host.Call[string](t.Context(), m, "echo", "hi"); err != nil || got != "hi" {
				t.Fatalf("echo = %q, %v", got, err)
			}
			if _, err := host.Call[string](t.Context(), m, "nope", "hi"); err == nil {
				t.Fatal("a method the module does not declare worked")
			}
			if w.name == "obsworker" {
				line := sink.output(t, "stderr", "observed side=server kind=unary service=obsworker method=echo").Msg
				if !strings.HasSuffix(line, "in=3 out=3 err=<nil> traceparent="+testTraceparent) {
					t.Errorf("the worker observed %q, want 3 bytes each way and the parent's traceparent", line)
				}
			}
			if err := m.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			ob.mu.Lock()
			defer ob.mu.Unlock()
			if len(ob.calls) != 1 {
				t.Fatalf("observed %d calls, want 1: %+v", len(ob.calls), ob.calls)
			}
			c := ob.calls[0]
			if c.Side != observe.Client || c.Method != "echo" || c.Service != w.name || c.BytesOut != 3 || c.BytesIn != 3 || c.Err != nil {
				t.Errorf("observed %+v, want echo with 3 bytes each way", c)
			}
			if wantCarrier := w.name == "obsworker"; ob.carriers[0] != wantCarrier {
				t.Errorf("the call had a Carrier: %v, want %v", ob.carriers[0], wantCarrier)
			}
			if len(ob.events) != 2 || ob.events[0].Kind != observe.ChildSpawn || ob.events[1].Kind != observe.ChildExit ||
				ob.events[1].Err != nil || ob.events[0].PID == 0 || ob.events[0].PID != ob.events[1].PID {
				t.Errorf("child events = %+v, want a spawn and a clean exit of one pid", ob.events)
			}
		})
	}
}
