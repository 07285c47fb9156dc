//go:build linux

package ipc_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/observe"
)

// TestRetryIdempotent: a request marked Idempotent is retried after the
// failures the policy names — nobody answering, the responder's process
// dying — and answered by the responder that came meanwhile; a request not
// marked so, or one whose handler failed, is not retried.
func TestRetryIdempotent(t *testing.T) {
	cl := newCluster(t, "unix", childConfig{})
	var retries []error
	var onRetry func(err error) // what the next retry waits for; set by the test goroutine before each request
	policy := ipc.RetryPolicy{
		Attempts: 4, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
		RetryOn: func(err error) bool {
			retries = append(retries, err) // on the requesting goroutine
			if onRetry != nil {
				onRetry(err)
				onRetry = nil
			}
			return errors.Is(err, ipc.ErrNoResponders) || errors.Is(err, ipc.ErrResponderGone)
		},
	}
	me := cl.dial(t, ipc.WithRetry(policy))
	other := cl.dial(t)
	var setupErr error // of startResponder, which runs on the requesting goroutine
	startResponder := func(subject string) func(error) {
		return func(error) {
			_, setupErr = other.QueueSubscribe(subject, "q", func(m *ipc.Msg) { m.Respond([]byte("answered")) })
			if setupErr == nil {
				setupErr = other.Flush(context.Background())
			}
		}
	}
	t.Cleanup(func() {
		if setupErr != nil {
			t.Errorf("starting a responder in RetryOn: %v", setupErr)
		}
	})

	t.Run("no-responders", func(t *testing.T) {
		retries, onRetry = nil, startResponder("svc.late")
		resp, err := me.Request(t.Context(), "svc.late", nil, ipc.Idempotent())
		if err != nil || string(resp.Data) != "answered" {
			t.Fatalf("idempotent request = %v, %v", resp, err)
		}
		if len(retries) != 1 || !errors.Is(retries[0], ipc.ErrNoResponders) {
			t.Errorf("failures retried: %v, want one ErrNoResponders", retries)
		}
	})
	t.Run("not-idempotent", func(t *testing.T) {
		retries, onRetry = nil, nil
		if _, err := me.Request(t.Context(), "svc.nobody", nil); !errors.Is(err, ipc.ErrNoResponders) {
			t.Errorf("request = %v, want ErrNoResponders", err)
		}
		if len(retries) != 0 {
			t.Errorf("a request not marked idempotent was retried after %v", retries)
		}
	})
	t.Run("responder-killed", func(t *testing.T) {
		hanger := cl.startClient(t, "hanger")
		hanger.must(command{Op: "handle", Subject: "svc.job", Queue: "q", Mode: "hang", Tag: "hang"})
		retries, onRetry = nil, startResponder("svc.job")
		answer := make(chan error, 1)
		go func() {
			resp, err := me.Request(t.Context(), "svc.job", []byte("job"), ipc.Idempotent())
			if err == nil && string(resp.Data) != "answered" {
				err = fmt.Errorf("answer %q", resp.Data)
			}
			answer <- err
		}()
		hanger.await("hang-got")
		hanger.kill()
		if err := recv(t, answer, "the retried request"); err != nil {
			t.Fatalf("idempotent request whose responder died = %v", err)
		}
		if len(retries) != 1 || !errors.Is(retries[0], ipc.ErrResponderGone) {
			t.Errorf("failures retried: %v, want one ErrResponderGone", retries)
		}
	})
	t.Run("handler-error", func(t *testing.T) {
		if _, err := ipc.Handle(other, "svc.fail", func(ctx context.Context, x int) (int, error) {
			return 0, errors.New("refused on purpose")
		}); err != nil {
			t.Fatal(err)
		}
		if err := other.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		retries, onRetry = nil, nil
		_, err := ipc.Call[int](t.Context(), me, "svc.fail", 1, ipc.Idempotent())
		var re *ipc.RemoteError
		if !errors.As(err, &re) || re.Message != "refused on purpose" {
			t.Errorf("Call = %v, want the handler's error", err)
		}
		if len(retries) != 1 || retries[0] == nil {
			t.Errorf("RetryOn saw %v, want the handler's error once (and it said no)", retries)
		}
	})
	t.Run("gives-up", func(t *testing.T) {
		retries, onRetry = nil, nil
		_, err := me.Request(t.Context(), "svc.never", nil, ipc.Idempotent())
		if !errors.Is(err, ipc.ErrNoResponders) {
			t.Errorf("request = %v, want ErrNoResponders after the last attempt", err)
		}
		if len(retries) != policy.Attempts-1 {
			t.Errorf("%d retries, want %d", len(retries), policy.Attempts-1)
		}
	})
}

// breakerEvents records a breaker's state changes.
type breakerEvents struct {
	mu  sync.Mutex
	got []string
}

func (b *breakerEvents) add(subject, from, to string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, subject+":"+from+"→"+to)
}

func (b *breakerEvents) list() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.got...)
}

// TestCircuitBreaker: after consecutive failures a subject's breaker opens
// and refuses requests without sending them (ErrCircuitOpen); once its
// timeout has passed it lets one trial through (half-open), which closes
// it again on success or reopens it on failure. A handler's own errors do
// not count, and other subjects are not affected.
func TestCircuitBreaker(t *testing.T) {
	const cooldown = 50 * time.Millisecond
	s := newServer(t)
	var events breakerEvents
	c := dial(t, s, ipc.WithBreaker(ipc.BreakerOptions{Failures: 2, Timeout: cooldown, HalfOpenMax: 1, OnChange: events.add}))
	responder := dial(t, s)
	// A breaker's cooldown is the thing under test: wait it out.
	cool := func() { <-time.After(cooldown) }

	for i := range 2 {
		if _, err := c.Request(t.Context(), "svc.down", nil); !errors.Is(err, ipc.ErrNoResponders) {
			t.Fatalf("request %d = %v, want ErrNoResponders", i, err)
		}
	}
	sent := s.Stats().NoResponders
	_, err := c.Request(t.Context(), "svc.down", nil)
	if !errors.Is(err, ipc.ErrCircuitOpen) {
		t.Fatalf("request after 2 failures = %v, want ErrCircuitOpen", err)
	}
	t.Logf("open: %v", err)
	if s.Stats().NoResponders != sent {
		t.Error("the refused request reached the server")
	}
	if st := c.BreakerState("svc.down"); st != "open" {
		t.Errorf("state = %s, want open", st)
	}
	// Other subjects are not affected.
	if _, err := c.Request(t.Context(), "svc.other", nil); !errors.Is(err, ipc.ErrNoResponders) {
		t.Errorf("another subject = %v, want ErrNoResponders", err)
	}

	// Half-open: a failed trial reopens it.
	cool()
	if st := c.BreakerState("svc.down"); st != "half-open" {
		t.Fatalf("state after the cooldown = %s, want half-open", st)
	}
	if _, err := c.Request(t.Context(), "svc.down", nil); !errors.Is(err, ipc.ErrNoResponders) {
		t.Fatalf("trial = %v, want ErrNoResponders", err)
	}
	if _, err := c.Request(t.Context(), "svc.down", nil); !errors.Is(err, ipc.ErrCircuitOpen) {
		t.Fatalf("after a failed trial = %v, want ErrCircuitOpen", err)
	}
	// A responder comes back: the next trial closes the breaker.
	if _, err := responder.Subscribe("svc.down", func(m *ipc.Msg) { m.Respond([]byte("up")) }); err != nil {
		t.Fatal(err)
	}
	if err := responder.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	cool()
	if resp, err := c.Request(t.Context(), "svc.down", nil); err != nil || string(resp.Data) != "up" {
		t.Fatalf("trial with a responder = %v, %v", resp, err)
	}
	if st := c.BreakerState("svc.down"); st != "closed" {
		t.Errorf("state after a good trial = %s, want closed", st)
	}
	want := []string{
		"svc.down:closed→open", "svc.down:open→half-open", "svc.down:half-open→open",
		"svc.down:open→half-open", "svc.down:half-open→closed",
	}
	if got := events.list(); !slices.Equal(got, want) {
		t.Errorf("state changes:\n got %v\nwant %v", got, want)
	}

	// Errors a handler returns on purpose are answers, not failures.
	if _, err := ipc.Handle(responder, "svc.picky", func(ctx context.Context, x int) (int, error) {
		return 0, errors.New("no")
	}); err != nil {
		t.Fatal(err)
	}
	if err := responder.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		var re *ipc.RemoteError
		if _, err := ipc.Call[int](t.Context(), c, "svc.picky", 1); !errors.As(err, &re) {
			t.Fatalf("Call = %v, want the handler's error", err)
		}
	}
	if st := c.BreakerState("svc.picky"); st != "closed" {
		t.Errorf("state after handler errors = %s, want closed", st)
	}
}

// traceKey carries a W3C trace context in a context.Context, as a tracing
// library would.
type traceKey struct{}

// tracer is an Observer that injects the context's traceparent into
// requests and PublishSync messages, and records what is delivered.
type tracer struct {
	mu        sync.Mutex
	delivered []string // traceparent headers of delivered messages
	requests  atomic.Int64
	ended     atomic.Int64
}

func (tr *tracer) CallStart(ctx context.Context, c *observe.Call) context.Context {
	switch {
	case c.Side == observe.Client:
		if c.Kind == observe.Unary {
			tr.requests.Add(1)
		}
		if tp, ok := ctx.Value(traceKey{}).(string); ok {
			c.Carrier.Set("traceparent", tp)
		}
	case c.Carrier != nil && c.Carrier.Get("traceparent") != "":
		tr.mu.Lock()
		tr.delivered = append(tr.delivered, c.Carrier.Get("traceparent"))
		tr.mu.Unlock()
	}
	return ctx
}

func (tr *tracer) CallEnd(_ context.Context, c *observe.Call) {
	if c.Side == observe.Client && c.Kind == observe.Unary {
		tr.ended.Add(1)
	}
}

func (tr *tracer) Child(observe.ChildEvent) {}

func (tr *tracer) seen() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.delivered...)
}

// TestObserverTraceparent: an Observer injects a W3C traceparent into a
// request; it arrives at a responder in another process and at a
// responder whose own Observer sees it delivered.
func TestObserverTraceparent(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	cl := newCluster(t, "unix", childConfig{})
	responder := cl.startClient(t, "responder")
	responder.must(command{Op: "handle", Subject: "svc.traced", Mode: "echo"})
	requests := &tracer{}
	me := cl.dial(t, ipc.WithObserver(requests))
	ctx := context.WithValue(t.Context(), traceKey{}, tp)

	resp, err := me.Request(ctx, "svc.traced", []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get("Got-Traceparent"); got != tp {
		t.Errorf("the responder process got traceparent %q, want %q", got, tp)
	}
	if requests.requests.Load() != 1 || requests.ended.Load() != 1 {
		t.Errorf("Observer.Request called %d times, its end %d; want 1 and 1", requests.requests.Load(), requests.ended.Load())
	}

	// A responder with its own Observer sees the header delivered, and so
	// does a subscriber of a PublishSync made with the context.
	deliveries := &tracer{}
	local := cl.dial(t, ipc.WithObserver(deliveries))
	got := make(chan string, 2)
	if _, err := local.Subscribe("svc.local", func(m *ipc.Msg) {
		got <- m.Header.Get("traceparent")
		m.Respond(nil)
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Subscribe("events.traced", func(m *ipc.Msg) { got <- m.Header.Get("traceparent") }); err != nil {
		t.Fatal(err)
	}
	if err := local.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := me.Request(ctx, "svc.local", nil); err != nil {
		t.Fatal(err)
	}
	if err := me.PublishSync(ctx, &ipc.Msg{Subject: "events.traced"}); err != nil {
		t.Fatal(err)
	}
	for _, what := range []string{"request", "PublishSync"} {
		if h := recv(t, got, "the traced message"); h != tp {
			t.Errorf("the %s's handler saw traceparent %q, want %q", what, h, tp)
		}
	}
	if seen := deliveries.seen(); len(seen) != 2 || seen[0] != tp || seen[1] != tp {
		t.Errorf("Observer.Deliver saw %q, want the traceparent twice", seen)
	}
	// The caller's own message is never changed by the observer.
	m := &ipc.Msg{Subject: "events.traced"}
	if err := me.PublishSync(ctx, m); err != nil {
		t.Fatal(err)
	}
	if m.Header != nil {
		t.Errorf("the observer changed the caller's message: %v", m.Header)
	}
	recv(t, got, "the last traced message")
}
