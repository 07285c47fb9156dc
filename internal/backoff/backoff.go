// Package backoff is the module's one way to wait between attempts: a
// sleep that ends early when its context does, and an exponential delay
// with jitter. procxy's Pool and bus calls, host's restarts (with
// internal/supervise's defaults), ipc's reconnects, request retries, Retry
// handler and accept loop, natsipc's reconnects, the procxy command and
// the benchmarks use it.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Sleep waits for d or until ctx ends, whichever comes first, and returns
// ctx.Err() in the second case. A d of zero or less does not wait: Sleep
// returns ctx.Err() at once, so a cancelled context always wins.
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
		return ctx.Err()
	}
}

// Exponential is an exponential delay with jitter: before attempt n
// (n ≥ 1) wait min(Base·2^(n−1), Max), moved by up to ±Jitter of itself.
// A Base of zero or less, or above Max, means Max. Set Max equal to Base
// for a fixed delay.
type Exponential struct {
	Base, Max time.Duration
	Jitter    float64 // fraction of each delay that is randomized, 0 to 1; zero or less: none
}

// Delay returns the wait before attempt n (n ≥ 1; smaller n count as 1),
// with r a uniform value in [0, 1) for the jitter ([Jitter]); r = 0.5
// gives the delay without jitter. It is never negative.
func (e Exponential) Delay(n int, r float64) time.Duration {
	d := e.Base
	if d <= 0 || d > e.Max {
		d = e.Max
	}
	for i := 1; i < n && d < e.Max; i++ {
		if d > e.Max/2 { // doubling would pass Max, or overflow
			d = e.Max
		} else {
			d *= 2
		}
	}
	if e.Jitter > 0 {
		d += time.Duration(float64(d) * e.Jitter * (2*r - 1))
	}
	return max(d, 0)
}

// Jitter returns a uniform random value in [0, 1) for [Exponential.Delay].
func Jitter() float64 { return rand.Float64() }
