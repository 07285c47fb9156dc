package supervise

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/procxy/procxy/rpc"
)

// Recycle says when a child is replaced by a fresh one, as Python's
// maxtasksperchild does for its pool workers: a child that leaks, or that
// is stuck in a method that ignores its context, does not live on. The
// zero value never recycles. A recycled child's exit error matches
// ErrRecycled and says why; the next call gets a new child (constructed
// anew, so its state starts over), even without Retries.
type Recycle struct {
	// Calls recycles a child after it has served this many calls (a
	// stream counts as one): it takes no more, and stops once those in
	// flight have returned. Zero means no limit.
	Calls int
	// Age recycles a child this long after it started, as Calls does.
	// Zero means no limit.
	Age time.Duration
	// MaxRSS kills a child whose resident memory passes this many bytes
	// (checked every 250 ms, Linux only); its calls in flight fail with
	// an exit error that says "resident memory X over the limit Y", or
	// are retried when idempotent. Zero means no limit.
	MaxRSS int64
	// KillOnTimeout, when positive, kills a child whose method is still
	// running this long after its call timed out (its timeout or its
	// context's deadline passed), for a method that ignores its context
	// would otherwise run on in the child. The caller is not kept
	// waiting: it gets the timeout at once. A method that returns within
	// the grace (its late answer arrives) leaves the child alone; else the
	// child is recycled, and its other calls in flight fail with an exit
	// error that says so, or are retried when idempotent. Zero means off.
	KillOnTimeout time.Duration
}

// usage is a child's part in its Recycle policy. Its owner reports each
// call with Begin and End; the policy retires the child, and the owner's
// hooks take it out of service and stop it.
type usage struct {
	mu      sync.Mutex    // guards the fields below
	detach  func()        // the owner sends no more calls to the child; nil until Recycle
	stop    func(error)   // the owner stops the idle retired child with the cause
	calls   int           // calls begun
	busy    int           // calls in flight
	retired bool          // it takes no more calls and stops once idle
	idle    chan struct{} // closed when retired and no call is in flight
	isIdle  bool          // idle is closed
	age     *time.Timer   // Recycle.Age
}

// Recycle starts the Recycle policy of the child: detach is called when
// the child must take no more calls (Recycle.Calls or Age reached, or a
// kill on timeout), and stop, on a goroutine of its own, once such a child
// has no call in flight; stop should end the child gracefully with the
// cause it is given. The MaxRSS watchdog runs from Start on.
func (c *Child) Recycle(detach func(), stop func(cause error)) {
	u := &c.use
	u.mu.Lock()
	defer u.mu.Unlock()
	u.detach, u.stop, u.idle = detach, stop, make(chan struct{})
	if age := c.spec.Recycle.Age; age > 0 && c.Err() == nil {
		u.age = time.AfterFunc(age, func() { c.Retire(fmt.Sprintf("reached its age limit %v (Recycle.Age)", age)) })
	}
}

// Begin counts a call on the child, retiring it when it reaches
// Recycle.Calls; End must follow when the call has returned.
func (c *Child) Begin() {
	u := &c.use
	u.mu.Lock()
	u.calls++
	u.busy++
	full := c.spec.Recycle.Calls > 0 && u.calls >= c.spec.Recycle.Calls
	u.mu.Unlock()
	if full {
		c.Retire(fmt.Sprintf("served %d calls (Recycle.Calls)", c.spec.Recycle.Calls))
	}
}

// End ends a call that Begin counted.
func (c *Child) End() {
	u := &c.use
	u.mu.Lock()
	defer u.mu.Unlock()
	u.busy--
	u.closeIdleLocked()
}

// closeIdleLocked closes idle once the retired child has no call in
// flight. u.mu is held.
func (u *usage) closeIdleLocked() {
	if u.retired && u.busy == 0 && !u.isIdle {
		u.isIdle = true
		close(u.idle)
	}
}

// Retired reports whether the child takes no more calls.
func (c *Child) Retired() bool {
	c.use.mu.Lock()
	defer c.use.mu.Unlock()
	return c.use.retired
}

// Retire takes the child out of service (detach) and stops it once its
// calls in flight have returned. Only the first call counts.
func (c *Child) Retire(why string) {
	u := &c.use
	u.mu.Lock()
	if u.retired || u.detach == nil {
		u.mu.Unlock()
		return
	}
	u.retired = true
	u.closeIdleLocked()
	detach, stop := u.detach, u.stop
	u.mu.Unlock()
	detach()
	go func() {
		select {
		case <-u.idle:
			stop(&RecycleError{Why: why})
		case <-c.exited:
		}
	}()
}

// FollowLate returns the context for a call on the child: with
// Recycle.KillOnTimeout set, one that learns whether the call's method
// still returns after the call timed out (rpc.WithLate), and the channel
// closed when it does, for TimedOut. c may be nil.
func (c *Child) FollowLate(ctx context.Context) (context.Context, <-chan struct{}) {
	if c == nil || c.spec.Recycle.KillOnTimeout <= 0 {
		return ctx, nil
	}
	ctx, late := rpc.WithLate(ctx)
	return ctx, late.Answered()
}

// TimedOut applies Recycle.KillOnTimeout after a call (what, such as
// "Calc.Spin") timed out: the child is taken out of service and killed
// once the grace has passed, unless it ended before or the method
// returned — answered is closed when its late answer arrives (see
// rpc.WithLate; nil when the call had none).
func (c *Child) TimedOut(what string, answered <-chan struct{}) {
	grace := c.spec.Recycle.KillOnTimeout
	if grace <= 0 {
		return
	}
	t := time.NewTimer(grace)
	go func() {
		defer t.Stop()
		select {
		case <-c.exited:
			return
		case <-answered:
			return
		case <-t.C:
		}
		c.use.mu.Lock()
		detach := c.use.detach
		c.use.mu.Unlock()
		if detach != nil {
			detach()
		}
		c.Kill(&RecycleError{Why: fmt.Sprintf("a call to %s timed out and its method was still running %v later (Recycle.KillOnTimeout)", what, grace)})
	}()
}

// stopAge stops the Age timer once the child has exited.
func (c *Child) stopAge() {
	c.use.mu.Lock()
	defer c.use.mu.Unlock()
	if c.use.age != nil {
		c.use.age.Stop()
	}
}
