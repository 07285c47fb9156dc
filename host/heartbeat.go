package host

import (
	"fmt"
	"time"
)

// heartbeat runs Procwire's liveness check (§9.2) until stop is closed: it
// pings at once, then at every tick of interval pings again if the last
// ping was answered, or — if it is still unanswered after timeout — returns
// an error wrapping ErrHeartbeat. At most one ping is outstanding, so a
// child that stops reading stdin never gets more than one line queued.
// Any value on pongs answers the outstanding ping. A failed ping write is
// treated as an unanswered ping. It returns nil when stop is closed.
func heartbeat(stop <-chan struct{}, interval, timeout time.Duration, ping func() error, pongs <-chan struct{}) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	sent := time.Now()
	waiting := true
	ping()
	for {
		select {
		case <-stop:
			return nil
		case <-pongs:
			waiting = false
		case now := <-t.C:
			if !waiting {
				sent, waiting = now, true
				ping()
				continue
			}
			if now.Sub(sent) >= timeout {
				return fmt.Errorf("%w: no $pong within %v", ErrHeartbeat, timeout)
			}
		}
	}
}
