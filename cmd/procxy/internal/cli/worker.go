package cli

import (
	"context"
	"fmt"
	"iter"
	"os"
	"sync/atomic"
	"time"

	"github.com/procxy/procxy"
)

// Worker is the demo's type. procxy.New[Worker] constructs one in a child
// process, and every method below runs there. It is safe for concurrent use.
type Worker struct {
	procxy.Emitter // sends "progress" events to the parent

	cancelled atomic.Int64 // Sleeps cut short by their ctx
}

func init() { procxy.Register[Worker](nil) }

// ErrDivZero is Div's error. A *procxy.RemoteError matches another with
// the same Code under errors.Is, so the parent can test for it.
var ErrDivZero = &procxy.RemoteError{Code: "E_DIV_ZERO", Message: "division by zero"}

// Progress is the value of a Worker's "progress" events.
type Progress struct {
	Step, Of int
}

// Add returns a + b.
func (w *Worker) Add(a, b int) int { return a + b }

// PID returns the process id the Worker lives in.
func (w *Worker) PID() int { return os.Getpid() }

// Sleep waits for d, or until ctx is done: the parent's deadline and
// cancellation reach it across the process boundary.
func (w *Worker) Sleep(ctx context.Context, d time.Duration) (time.Duration, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return d, nil
	case <-ctx.Done():
		w.cancelled.Add(1)
		return 0, ctx.Err()
	}
}

// Cancelled returns how many calls of Sleep their ctx has cut short.
func (w *Worker) Cancelled() int64 { return w.cancelled.Load() }

// Build pretends to build something in steps of 20 ms, emitting a
// "progress" event after each.
func (w *Worker) Build(ctx context.Context, steps int) (string, error) {
	for i := 1; i <= steps; i++ {
		if _, err := w.Sleep(ctx, 20*time.Millisecond); err != nil {
			return "", err
		}
		if err := w.Emit("progress", Progress{Step: i, Of: steps}); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("built in %d steps", steps), nil
}

// Primes streams the primes below n, one at a time.
func (w *Worker) Primes(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := 2; i < n; i++ {
			prime := true
			for d := 2; d*d <= i; d++ {
				prime = prime && i%d != 0
			}
			if prime && !yield(i) {
				return
			}
		}
	}
}

// Div returns a / b, or ErrDivZero.
func (w *Worker) Div(a, b int) (int, error) {
	if b == 0 {
		return 0, ErrDivZero
	}
	return a / b, nil
}

// Panic panics with msg. The child recovers: the caller gets the panic as
// an error with the child's stack, and the child goes on serving.
func (w *Worker) Panic(msg string) int { panic(msg) }

// Crash ends the child process with exit status code, as a fatal error
// would, after saying so on stderr.
func (w *Worker) Crash(code int) {
	fmt.Fprintln(os.Stderr, "worker: simulated fatal error")
	os.Exit(code)
}
