package supervise

import (
	"context"
	"math/rand/v2"
	"time"
)

// Backoff is an exponential delay: before retry n (n ≥ 1) wait
// min(Base·2^(n−1), Max), moved by up to ±Jitter of itself.
type Backoff struct {
	Base, Max time.Duration
	Jitter    float64 // fraction of each delay that is randomized, 0 to 1
}

// Delay returns the wait before retry n (n ≥ 1), with r a uniform value in
// [0, 1) for the jitter.
func (b Backoff) Delay(n int, r float64) time.Duration {
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

// Jitter returns a uniform random value in [0, 1) for Backoff.Delay.
func Jitter() float64 { return rand.Float64() }

// Limiter is a sliding-window restart budget: at most Max restarts within
// any Window; a negative Max means unlimited. It is not safe for
// concurrent use; its owner guards it.
type Limiter struct {
	Max    int
	Window time.Duration
	times  []time.Time // restarts within the window, oldest first
}

// Allow reports whether a restart at now fits the budget, and records it if so.
func (l *Limiter) Allow(now time.Time) bool {
	return l.Next(now) == 0 && l.record(now)
}

// Next returns how long after now a restart would fit the budget: zero
// when it fits now.
func (l *Limiter) Next(now time.Time) time.Duration {
	switch {
	case l.Max < 0:
		return 0
	case l.Max == 0:
		return l.Window
	}
	keep := l.times[:0]
	for _, t := range l.times {
		if now.Sub(t) < l.Window {
			keep = append(keep, t)
		}
	}
	l.times = keep
	if len(l.times) < l.Max {
		return 0
	}
	return l.times[len(l.times)-l.Max].Add(l.Window).Sub(now)
}

func (l *Limiter) record(now time.Time) bool {
	if l.Max >= 0 {
		l.times = append(l.times, now)
	}
	return true
}

// The restart policy's defaults, shared by procxy's Pool and host's
// modules.
const (
	DefaultBackoffBase   = time.Second
	DefaultBackoffMax    = 30 * time.Second
	DefaultBackoffJitter = 0.2
	DefaultRestartMax    = 5
	DefaultRestartWindow = 60 * time.Second
)

// DefaultBackoff is the backoff with the default values.
var DefaultBackoff = Backoff{Base: DefaultBackoffBase, Max: DefaultBackoffMax, Jitter: DefaultBackoffJitter}

// Sleep waits for d or for ctx, whichever comes first, and returns ctx's
// cause in the second case. It never sleeps past a cancellation.
func Sleep(ctx context.Context, d time.Duration) error {
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
