package rpc

import (
	"context"
	"sync"
	"time"
)

// timeouts enforces Method.Timeout for a Conn's pending calls with one
// timer, set for the earliest deadline and moved only when a call with an
// earlier one arrives. Calls that share a Timeout have increasing
// deadlines, so the timer is set about once per Timeout, not once per call:
// setting a runtime timer wakes an idle thread to watch it, which on a
// quiet machine costs as much as the call itself.
type timeouts struct {
	mu    sync.Mutex
	timer *time.Timer // made on first use
	at    int64       // when timer fires (see now); 0: not set
	off   bool        // the connection ended
}

// watchTimeout makes the wait of cl fail with context.DeadlineExceeded
// after d, unless ctx's own deadline comes first anyway.
func (c *Conn) watchTimeout(ctx context.Context, cl *call, d time.Duration) {
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= d {
		return
	}
	at := now() + int64(d)
	c.mu.Lock()
	cl.deadline = at
	c.mu.Unlock()
	c.tmo.arm(c, at)
}

// arm makes the timer fire at or before at.
func (t *timeouts) arm(c *Conn, at int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.off || (t.at != 0 && t.at <= at) {
		return
	}
	t.at = at
	d := time.Duration(at - now())
	if t.timer == nil {
		t.timer = time.AfterFunc(d, c.expire)
	} else {
		t.timer.Reset(d)
	}
}

func (t *timeouts) stop() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.off = true
	if t.timer != nil {
		t.timer.Stop()
	}
}

// expire cancels the waits of the calls whose deadline has passed and sets
// the timer for the next deadline.
func (c *Conn) expire() {
	c.tmo.mu.Lock()
	c.tmo.at = 0
	c.tmo.mu.Unlock()
	t := now()
	var next int64
	c.mu.Lock()
	for _, cl := range c.pending {
		switch {
		case cl.deadline == 0 || cl.stream != nil:
		case cl.deadline <= t:
			cl.deadline = 0
			cl.expired.Store(true)
			// Under c.mu the call cannot complete and be reused meanwhile.
			c.turn.Cancel(&cl.w)
		case next == 0 || cl.deadline < next:
			next = cl.deadline
		}
	}
	c.mu.Unlock()
	if next != 0 {
		c.tmo.arm(c, next)
	}
}

var epoch = time.Now()

// now is a monotonic clock in nanoseconds.
func now() int64 { return int64(time.Since(epoch)) }
