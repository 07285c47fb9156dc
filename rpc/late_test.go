package rpc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/procxy/procxy/rpc"
)

// TestLateAnswer: a call that gave up with a Late learns when the handler,
// which ignored the abort, answers after all; the connection stays usable
// and the late answer reaches no one else.
func TestLateAnswer(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			g, cli, late := abandonStubborn(t, tr)
			select {
			case <-late.Answered():
				t.Fatal("Answered closed while the handler still runs")
			default:
			}
			close(g.release)
			<-late.Answered() // the stubborn handler's reply, after the abort
			var got int
			if err := cli.Call(t.Context(), gate, 8, &got); err != nil || got != 8 {
				t.Fatalf("next call = %d, %v", got, err)
			}
		})
	}
}

// TestLateAnswerTimeout: Method.Timeout gives up the same way.
func TestLateAnswerTimeout(t *testing.T) {
	g := newGated(t)
	cli, _ := pair(t, "pipe", rpc.Options{Handlers: g.mux()}, rpc.Options{})
	ctx, late := rpc.WithLate(t.Context())
	m := stubborn
	m.Timeout = time.Millisecond
	if err := cli.Call(ctx, m, 1, new(int)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call = %v, want context.DeadlineExceeded", err)
	}
	<-g.started
	close(g.release)
	<-late.Answered()
}

// TestLateConnEnds: a late call whose connection ends is forgotten, not
// answered.
func TestLateConnEnds(t *testing.T) {
	g, cli, late := abandonStubborn(t, "pipe")
	cli.Close()
	close(g.release)
	select {
	case <-late.Answered():
		t.Fatal("Answered closed for a connection that ended")
	default:
	}
}

// abandonStubborn makes a call with a Late to a handler that ignores its
// cancellation, and cancels it: the call has given up, the handler runs on
// until g.release is closed.
func abandonStubborn(t *testing.T, tr string) (*gated, *rpc.Conn, *rpc.Late) {
	t.Helper()
	g := newGated(t)
	cli, _ := pair(t, tr, rpc.Options{Handlers: g.mux()}, rpc.Options{})
	ctx, late := rpc.WithLate(t.Context())
	ctx, cancel := context.WithCancel(ctx)
	result := make(chan error, 1)
	go func() { result <- cli.Call(ctx, stubborn, 7, new(int)) }()
	<-g.started
	cancel()
	if err := <-result; !errors.Is(err, context.Canceled) {
		t.Fatalf("Call = %v, want context.Canceled", err)
	}
	return g, cli, late
}
