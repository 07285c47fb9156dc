package host

import (
	"time"

	"github.com/procxy/procxy/internal/backoff"
)

// delay returns the wait before retry n (n ≥ 1) with the shared backoff
// (internal/backoff), r being the jitter's uniform value in [0, 1).
func (b Backoff) delay(n int, r float64) time.Duration {
	return backoff.Exponential(b).Delay(n, r)
}
