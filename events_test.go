package procxy_test

import (
	"sync/atomic"
	"testing"

	"github.com/procxy/procxy"
)

// Chatty emits events from its methods.
type Chatty struct{ procxy.Emitter }

func init() { procxy.Register[Chatty](nil) }

// Tick emits n "tick" events, then returns n.
func (c *Chatty) Tick(n int) (int, error) {
	for i := range n {
		if err := c.Emit("tick", i); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// Outer emits one "outer" event.
func (c *Chatty) Outer() error { return c.Emit("outer", 0) }

func newChatty(t *testing.T) *procxy.Proxy[Chatty] {
	t.Helper()
	p, err := procxy.New[Chatty](t.Context(), procxy.Logger(childLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestEventsBeforeReturn: the events a method emitted before returning
// have reached every listener when its call returns, 1,000 times in a row.
func TestEventsBeforeReturn(t *testing.T) {
	p := newChatty(t)
	var a, b atomic.Int64
	procxy.OnEvent(p, "tick", func(int) { a.Add(1) })
	procxy.OnEvent(p, "tick", func(int) { b.Add(1) })
	for i := range 1000 {
		if _, err := procxy.Call[int](t.Context(), p, "Tick", 5); err != nil {
			t.Fatal(err)
		}
		if want := int64(5 * (i + 1)); a.Load() != want || b.Load() != want {
			t.Fatalf("call %d returned with %d and %d events delivered; want %d", i, a.Load(), b.Load(), want)
		}
	}
}

func TestEventsBeforeReturnPool(t *testing.T) {
	pl, err := procxy.NewPool[Chatty](t.Context(), 3, procxy.Logger(childLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	var n atomic.Int64
	remove := procxy.OnEvent(pl, "tick", func(int) { n.Add(1) })
	for i := range 1000 {
		if _, err := procxy.Call[int](t.Context(), pl, "Tick", 5); err != nil {
			t.Fatal(err)
		}
		if want := int64(5 * (i + 1)); n.Load() != want {
			t.Fatalf("call %d returned with %d events delivered; want %d", i, n.Load(), want)
		}
	}
	remove()
	if _, err := procxy.Call[int](t.Context(), pl, "Tick", 5); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 5000 {
		t.Errorf("a removed listener got events: %d, want 5000", n.Load())
	}
}

// TestEventsReentrant: a listener that calls the proxy does not deadlock,
// and the events of the method it calls reach their listeners before its
// own call returns, as with a local emitter.
func TestEventsReentrant(t *testing.T) {
	p := newChatty(t)
	var ticks atomic.Int64
	procxy.OnEvent(p, "tick", func(int) { ticks.Add(1) })
	inner := make(chan int64, 100)
	procxy.OnEvent(p, "outer", func(int) {
		before := ticks.Load()
		if _, err := procxy.Call[int](t.Context(), p, "Tick", 3); err != nil {
			inner <- -1
			return
		}
		inner <- ticks.Load() - before
	})
	for i := range 100 {
		if _, err := procxy.Call[struct{}](t.Context(), p, "Outer"); err != nil {
			t.Fatal(err)
		}
		// Outer's event has reached its listener, which has made its call.
		select {
		case got := <-inner:
			if got != 3 {
				t.Fatalf("round %d: the listener's call returned with %d of its 3 events delivered", i, got)
			}
		default:
			t.Fatalf("round %d: Outer returned before its event's listener ran", i)
		}
	}
}

// TestEventsReentrantPool: pool listeners that call the pool (another
// member, maybe) do not deadlock.
func TestEventsReentrantPool(t *testing.T) {
	pl, err := procxy.NewPool[Chatty](t.Context(), 2, procxy.Logger(childLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	var calls atomic.Int64
	procxy.OnEvent(pl, "outer", func(int) {
		if _, err := procxy.Call[int](t.Context(), pl, "Tick", 2); err == nil {
			calls.Add(1)
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			procxy.Call[struct{}](t.Context(), pl, "Outer")
		}
	}()
	for range 200 {
		if _, err := procxy.Call[struct{}](t.Context(), pl, "Outer"); err != nil {
			t.Fatal(err)
		}
	}
	<-done
	if calls.Load() != 400 {
		t.Errorf("listeners made %d calls, want 400", calls.Load())
	}
}
