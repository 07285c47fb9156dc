package ipc

import (
	"context"
	"time"
)

// watchSilence is the heartbeat of a client and of a server, until ctx
// ends: it calls ping every interval d, and check when the peer silent the
// longest may have been silent for 3 intervals. check drops the peers that
// have been, and returns how long until the next one may be (at most 3d).
// The check has its own timer: done only at the pings, a dead peer would
// be found up to 4 intervals late. When this process did not run for a
// while (stopped, suspended), what the peers sent meanwhile is still
// unread: the check then waits one interval for the readers to catch up
// rather than drop everyone.
func watchSilence(ctx context.Context, d time.Duration, ping func(), check func(now time.Time) time.Duration) {
	tick := time.NewTicker(d)
	defer tick.Stop()
	timer := time.NewTimer(3 * d)
	defer timer.Stop()
	due := time.Now().Add(3 * d)
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
			now := time.Now()
			next := d
			if now.Sub(due) <= d {
				next = check(now)
			}
			due = now.Add(next)
			timer.Reset(next)
		case <-tick.C:
			ping()
		}
	}
}
