package worker_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/worker"
)

func nop(context.Context, any) (any, error) { return nil, nil }

// TestRegisterPanics: registration mistakes are programming errors caught at
// setup, with a message that says what to fix.
func TestRegisterPanics(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		fn         func(w *worker.Worker)
	}{
		{"duplicate method", `method "a" registered twice`, func(w *worker.Worker) {
			worker.Result(w, "a", nop)
			worker.Ack(w, "a", nop)
		}},
		{"duplicate event", `event "e" registered twice`, func(w *worker.Worker) {
			worker.Event[int](w, "e")
			worker.Event[int](w, "e")
		}},
		{"empty name", "empty name", func(w *worker.Worker) { worker.Result(w, "", nop) }},
		{"timeout on a stream", "WithTimeout on stream method", func(w *worker.Worker) {
			worker.Stream(w, "s", func(context.Context, any, func(int) error) error { return nil }, worker.WithTimeout(time.Second))
		}},
		{"two codecs on an event", "only WithCodec applies to events", func(w *worker.Worker) {
			worker.Event[[]byte](w, "e", worker.WithCodecs(codec.Raw, codec.Raw))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if msg := recover(); msg == nil || !strings.Contains(msg.(string), tc.want) {
					t.Errorf("panic %v, want one containing %q", msg, tc.want)
				}
			}()
			tc.fn(worker.New(worker.Options{}))
		})
	}
}

// TestRegisterAfterRun: registration is frozen once Run starts, and a
// method and an event may share a name (separate id spaces).
func TestRegisterAfterRun(t *testing.T) {
	h := start(t, worker.Options{}, func(w *worker.Worker) {
		worker.Result(w, "x", nop)
		worker.Event[int](w, "x")
	})
	defer func() {
		msg, _ := recover().(string)
		if !strings.Contains(msg, `method "late" registered after Run started`) {
			t.Errorf("panic %q, want one about registering after Run", msg)
		}
	}()
	worker.Result(h.w, "late", nop)
}

// TestEmit: events need the adopted connection; afterwards they go out with
// the event's codec.
func TestEmit(t *testing.T) {
	var ev *worker.Emitter[[]byte]
	h := start(t, worker.Options{}, func(w *worker.Worker) {
		worker.Result(w, "m", nop)
		ev = worker.Event[[]byte](w, "raw", worker.WithCodec(codec.Raw))
	})
	if err := ev.Emit(t.Context(), []byte("early")); !errors.Is(err, worker.ErrNotConnected) {
		t.Errorf("Emit before the parent connected = %v, want ErrNotConnected", err)
	}
	p := h.dial(nil)
	p.writeHex("0001000000000100000001 c0") // once answered, the connection is adopted
	p.frame()
	if err := ev.Emit(t.Context(), []byte{0xca, 0xfe}); err != nil {
		t.Fatal(err)
	}
	if got, want := p.frame(), "0001010000000000000002 cafe"; got != want {
		t.Errorf("event frame = %s, want %s", got, want)
	}
	if ev.Name() != "raw" {
		t.Errorf("Name() = %q", ev.Name())
	}
}
