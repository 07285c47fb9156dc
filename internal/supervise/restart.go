package supervise

import (
	"time"

	"github.com/procxy/procxy/internal/backoff"
)

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

// DefaultBackoff is the backoff of failed starts with the default values.
var DefaultBackoff = backoff.Exponential{Base: DefaultBackoffBase, Max: DefaultBackoffMax, Jitter: DefaultBackoffJitter}
