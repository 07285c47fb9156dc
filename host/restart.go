package host

import (
	"context"
	"time"

	"github.com/procxy/procxy/internal/supervise"
)

// delay returns the wait before retry n (n ≥ 1) with the shared restart
// policy's backoff (internal/supervise), r being the jitter's uniform value
// in [0, 1).
func (b Backoff) delay(n int, r float64) time.Duration {
	return supervise.Backoff(b).Delay(n, r)
}

// wait waits for d or for ctx, whichever comes first, and returns ctx's
// error in the second case. It never sleeps past a cancellation.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
