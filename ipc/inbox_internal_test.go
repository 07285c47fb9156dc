package ipc

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

// gatedTransport is a bus whose inbox subscription waits for gate.
type gatedTransport struct {
	entered chan struct{} // closed when Subscribe has begun
	gate    chan struct{}
	subs    atomic.Int32
}

func (g *gatedTransport) Open(_ context.Context, s Sink) error {
	s.State(StateConnected, nil)
	return nil
}
func (g *gatedTransport) Subscribe(uint32, string, string) error {
	if g.subs.Add(1) == 1 {
		close(g.entered)
	}
	<-g.gate
	return nil
}
func (g *gatedTransport) Publish(*Msg, Flags) error               { return nil }
func (g *gatedTransport) PublishSync(context.Context, *Msg) error { return nil }
func (g *gatedTransport) Unsubscribe(uint32) error                { return nil }
func (g *gatedTransport) Cancel(string) error                     { return nil }
func (g *gatedTransport) Flush(context.Context) error             { return nil }
func (g *gatedTransport) Close() error                            { return nil }
func (g *gatedTransport) Info() TransportInfo {
	return TransportInfo{Backend: "test", MaxPayload: DefaultMaxPayload, Connected: true}
}

// TestInboxBeforeRequests: while the first request of a connection
// subscribes its inbox, the others wait: sent before the bus knows the
// inbox, a request could be answered to nobody, and wait for its deadline.
func TestInboxBeforeRequests(t *testing.T) {
	g := &gatedTransport{entered: make(chan struct{}), gate: make(chan struct{})}
	c, err := NewConn(t.Context(), g)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var (
		wg       sync.WaitGroup
		released atomic.Bool
		errs     [3]error
		early    [3]bool
	)
	wg.Go(func() { errs[0] = c.ensureInbox() })
	<-g.entered
	c.mu.Lock()
	on := c.inboxOn
	c.mu.Unlock()
	if on {
		t.Errorf("the inbox counts as subscribed while its subscription is being made")
	}
	for i := 1; i < len(errs); i++ {
		wg.Go(func() {
			errs[i] = c.ensureInbox()
			early[i] = !released.Load()
		})
	}
	released.Store(true)
	close(g.gate)
	wg.Wait()
	for i := range errs {
		if errs[i] != nil || early[i] {
			t.Errorf("request %d: ensureInbox = %v, returned before the subscription was made: %v", i, errs[i], early[i])
		}
	}
	if n := g.subs.Load(); n != 1 {
		t.Errorf("%d inbox subscriptions, want 1", n)
	}
}
