package host

import (
	"time"

	"github.com/procxy/procxy/internal/supervise"
)

// delay returns the wait before retry n (n ≥ 1) with the shared restart
// policy's backoff (internal/supervise), r being the jitter's uniform value
// in [0, 1).
func (b Backoff) delay(n int, r float64) time.Duration {
	return supervise.Backoff(b).Delay(n, r)
}

// wait waits for d or for ctx (supervise.Sleep).
var wait = supervise.Sleep
