package supervise

import (
	"errors"
	"testing"
)

// TestRecycleCalls: the call that reaches Recycle.Calls detaches the
// child at once, and the child is stopped once both calls in flight have
// ended — once, however the calls end.
func TestRecycleCalls(t *testing.T) {
	c := &Child{spec: Spec{Recycle: Recycle{Calls: 2}}, exited: make(chan struct{})}
	detached := make(chan struct{}, 2)
	stopped := make(chan error, 2)
	c.Recycle(func() { detached <- struct{}{} }, func(cause error) { stopped <- cause })
	c.Begin()
	if c.Retired() {
		t.Fatal("retired after one call")
	}
	c.Begin()
	<-detached
	if !c.Retired() {
		t.Fatal("not retired after two calls")
	}
	c.End()
	select {
	case <-stopped:
		t.Fatal("stopped with a call in flight")
	default:
	}
	c.End()
	if err := <-stopped; !errors.Is(err, ErrRecycled) || err.Error() != "recycled: served 2 calls (Recycle.Calls)" {
		t.Fatalf("stop cause %v, want the Calls recycling", err)
	}
	c.Retire("again") // a second retirement does nothing
	c.Begin()
	c.End()
	close(c.exited)
	if len(detached)+len(stopped) != 0 {
		t.Fatal("detached or stopped twice")
	}
}
