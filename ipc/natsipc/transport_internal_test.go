package natsipc

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/procxy/procxy/ipc"
)

// blockingSink holds the first delivery until released and counts the
// rest.
type blockingSink struct {
	release   chan struct{}
	once      sync.Once
	delivered atomic.Int64
	dropped   atomic.Int64
}

func (s *blockingSink) Deliver(sid uint32, m *ipc.Msg, f ipc.Flags) {
	s.once.Do(func() { <-s.release })
	s.delivered.Add(1)
}
func (s *blockingSink) Cancel(string)             {}
func (s *blockingSink) Dropped(sid uint32, n int) { s.dropped.Add(int64(n)) }
func (s *blockingSink) State(ipc.State, error)    {}
func (s *blockingSink) AsyncError(err error)      {}

// TestNATSDropsReported: messages nats.go drops because the hand-over
// queue of a subscription is full reach the sink as drops, so that every
// message is either delivered or counted.
func TestNATSDropsReported(t *testing.T) {
	srv, err := StartServer(t.Context(), ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	tr := newTransport(srv.URL(), ipc.NewOptions())
	tr.owned = true
	tr.pendingMsgs = 10
	sink := &blockingSink{release: make(chan struct{})}
	if err := tr.Open(t.Context(), sink); err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Subscribe(2, "burst", ""); err != nil {
		t.Fatal(err)
	}
	if err := tr.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	pub, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const n = 100
	for range n {
		pub.Publish("burst", []byte("x"))
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	// Everything has reached nats.go: one message is held in Deliver,
	// ten wait, the rest were dropped.
	if err := tr.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	close(sink.release)
	if err := tr.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	d, got := sink.dropped.Load(), sink.delivered.Load()
	if d == 0 || d+got != n {
		t.Errorf("delivered %d and reported %d dropped, want some dropped and %d in all", got, d, n)
	}
}
