package host

import (
	"context"
	"math/rand/v2"
	"time"
)

// delay returns the wait before retry n (n ≥ 1): min(Base·2^(n−1), Max),
// then moved by up to ±Jitter of itself using r, a uniform value in [0, 1).
func (b Backoff) delay(n int, r float64) time.Duration {
	d := b.Base
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	if b.Jitter > 0 {
		d += time.Duration(float64(d) * b.Jitter * (2*r - 1))
	}
	return max(d, 0)
}

// limiter is the sliding-window restart budget (§9.3). It is not safe for
// concurrent use; Module guards it with its mutex.
type limiter struct {
	max    int // negative means unlimited
	window time.Duration
	times  []time.Time // restarts within the window, oldest first
}

// allow reports whether a restart at now fits the budget, and records it if so.
func (l *limiter) allow(now time.Time) bool {
	if l.max < 0 {
		return true
	}
	keep := l.times[:0]
	for _, t := range l.times {
		if now.Sub(t) < l.window {
			keep = append(keep, t)
		}
	}
	l.times = keep
	if len(l.times) >= l.max {
		return false
	}
	l.times = append(l.times, now)
	return true
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

// jitter returns a uniform random value in [0, 1) for Backoff.delay.
func jitter() float64 { return rand.Float64() }
