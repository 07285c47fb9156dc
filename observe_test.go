package procxy_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/observe"
)

// envObserve makes childObserver report the calls a child serves.
const envObserve = "PROCXY_TEST_OBSERVE"

// childObserver is the Observer TestMain gives Main: with envObserve set it
// prints each call the child served on stderr, which the parent's Logger
// receives.
type childObserver struct{}

func (childObserver) CallStart(ctx context.Context, c *observe.Call) context.Context { return ctx }
func (childObserver) CallEnd(_ context.Context, c *observe.Call) {
	if os.Getenv(envObserve) == "" {
		return
	}
	tp := ""
	if c.Carrier != nil {
		tp = c.Carrier.Get("traceparent")
	}
	fmt.Fprintf(os.Stderr, "observed side=%v service=%s method=%s in=%d out=%d err=%v traceparent=%s\n",
		c.Side, c.Service, c.Method, c.BytesIn, c.BytesOut, c.Err, tp)
}
func (childObserver) Child(observe.ChildEvent) {}

// lines is a slog handler that passes on the child's "observed" lines.
type lines struct{ ch chan string }

func (h lines) Enabled(context.Context, slog.Level) bool { return true }
func (h lines) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h lines) WithGroup(string) slog.Handler            { return h }
func (h lines) Handle(_ context.Context, r slog.Record) error {
	if strings.HasPrefix(r.Message, "observed ") {
		h.ch <- r.Message
	}
	return nil
}

// parentObserver injects a traceparent and records calls and child events.
type parentObserver struct {
	mu     sync.Mutex
	calls  []observe.Call       // guarded by mu
	events []observe.ChildEvent // guarded by mu
}

const testTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func (o *parentObserver) CallStart(ctx context.Context, c *observe.Call) context.Context {
	if c.Carrier != nil {
		c.Carrier.Set("traceparent", testTraceparent)
	}
	return ctx
}

func (o *parentObserver) CallEnd(_ context.Context, c *observe.Call) {
	o.mu.Lock()
	defer o.mu.Unlock()
	cp := *c
	cp.Carrier = nil
	o.calls = append(o.calls, cp)
}

func (o *parentObserver) Child(e observe.ChildEvent) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.events = append(o.events, e)
}

// TestObserve: the parent's Observer sees each call with its method,
// sizes and error, and the child's spawn, exit and restart; the child's
// Observer sees the calls it serves with the parent's trace context.
func TestObserve(t *testing.T) {
	ob := &parentObserver{}
	out := lines{ch: make(chan string, 16)}
	p, err := procxy.New[Calculator](t.Context(), procxy.Observe(ob), procxy.Retries(1),
		procxy.Env(envObserve+"=1"), procxy.Logger(slog.New(out)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := procxy.Call[int](t.Context(), p, "Add", 2, 3); err != nil || got != 5 {
		t.Fatalf("Add = %d, %v", got, err)
	}
	if _, err := procxy.Call[float64](t.Context(), p, "Div", 1.0, 0.0); err == nil {
		t.Fatal("Div by zero succeeded")
	}
	for _, err := range procxy.Stream[int](t.Context(), p, "Count", 2) {
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		"observed side=server service=github.com/procxy/procxy_test.Calculator method=$new",
		"observed side=server service=github.com/procxy/procxy_test.Calculator method=Add in=3 out=1 err=<nil> traceparent=" + testTraceparent,
		"observed side=server service=github.com/procxy/procxy_test.Calculator method=Div",
		"observed side=server service=github.com/procxy/procxy_test.Calculator method=Count",
	}
	// The child reports each call after its answer is out, so the lines
	// may come in another order than the calls.
	var got []string
	for range want {
		got = append(got, <-out.ch)
	}
	slices.Sort(got)
	slices.Sort(want)
	for i, w := range want {
		if !strings.HasPrefix(got[i], w) || !strings.HasSuffix(got[i], testTraceparent) {
			t.Errorf("the child observed %q, want %q… with the parent's traceparent", got[i], w)
		}
	}
	marker := filepath.Join(t.TempDir(), "crashed")
	if _, err := procxy.Call[string](t.Context(), p, "CrashOnce", marker); err == nil {
		t.Fatal("CrashOnce did not fail")
	}
	if _, err := procxy.Call[string](t.Context(), p, "CrashOnce", marker); err != nil {
		t.Fatalf("CrashOnce in the restarted child: %v", err)
	}
	p.Close()

	ob.mu.Lock()
	defer ob.mu.Unlock()
	var methods []string
	for _, c := range ob.calls {
		if c.Side != observe.Client || c.Service != "github.com/procxy/procxy_test.Calculator" || c.Duration <= 0 {
			t.Errorf("parent observed %+v", c)
		}
		methods = append(methods, fmt.Sprintf("%s:%v", c.Method, c.Err != nil))
	}
	wantCalls := []string{"$new:false", "Add:false", "Div:true", "Count:false", "CrashOnce:true", "$new:false", "CrashOnce:false"}
	if !slices.Equal(methods, wantCalls) {
		t.Errorf("parent observed calls %q, want %q", methods, wantCalls)
	}
	if add := ob.calls[1]; add.BytesOut != 3 || add.BytesIn != 1 { // [2, 3] is 3 bytes of msgpack, 5 is one
		t.Errorf("Add observed with %d bytes out, %d in; want 3 and 1", add.BytesOut, add.BytesIn)
	}
	var kinds []string
	for _, e := range ob.events {
		kinds = append(kinds, fmt.Sprintf("%v:%v", e.Kind, e.Err != nil))
	}
	wantEvents := []string{"spawn:false", "exit:true", "restart:true", "spawn:false", "exit:false"}
	if !slices.Equal(kinds, wantEvents) {
		t.Errorf("parent observed child events %q, want %q", kinds, wantEvents)
	}
}
