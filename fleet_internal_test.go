package procxy

import (
	"context"
	"errors"
	"testing"
)

// A call that reaches a worker after its Serve began to end is turned
// away without running, and its caller sees ErrNoWorker (so it may retry
// elsewhere) rather than a method error.
func TestWorkerStoppingTurnsCallsAway(t *testing.T) {
	w := &fleetWorker{slots: make(chan struct{}, 1)}
	done, err := w.track(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	done()
	w.mu.Lock()
	w.stopping = true
	w.mu.Unlock()
	if _, err := w.track(t.Context()); err != errWorkerStopping {
		t.Fatalf("track on a stopping worker: %v", err)
	}
	if len(w.slots) != 0 {
		t.Fatal("a turned-away call kept its slot")
	}
	b := &busEndpoint{}
	b.o.key = "k"
	err = b.explain(context.Background(), "M", errWorkerStopping)
	if !errors.Is(err, ErrNoWorker) {
		t.Fatalf("explain: %v does not match ErrNoWorker", err)
	}
	if _, retry := b.retryable(err, "M", 0); !retry {
		t.Fatalf("%v is not retried", err)
	}
	t.Log(err)
}
