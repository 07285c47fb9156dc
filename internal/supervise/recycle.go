package supervise

import "time"

// Recycle says when a child is replaced by a fresh one, as Python's
// maxtasksperchild does for its pool workers: a child that leaks, or that
// is stuck in a method that ignores its context, does not live on. The
// zero value never recycles. A recycled child's exit error matches
// ErrRecycled and says why; the next call gets a new child (constructed
// anew, so its state starts over), even without Retries.
type Recycle struct {
	// Calls recycles a child after it has served this many calls: it
	// takes no more, and stops once those in flight have returned. Zero
	// means no limit.
	Calls int
	// Age recycles a child this long after it started, as Calls does.
	// Zero means no limit.
	Age time.Duration
	// MaxRSS kills a child whose resident memory passes this many bytes
	// (checked every 250 ms, Linux only); its calls in flight fail with
	// an exit error that says "resident memory X over the limit Y", or
	// are retried when idempotent. Zero means no limit.
	MaxRSS int64
	// KillOnTimeout, when positive, kills a child this long after a call
	// on it timed out (its timeout or its context's deadline passed), for
	// a method that ignores its context would otherwise run on in the
	// child. The caller is not kept waiting: it gets the timeout at once.
	// The parent cannot see whether the method returned after its
	// cancellation, so the child is recycled either way; its other calls
	// in flight then fail with an exit error that says so, or are retried
	// when idempotent. Zero means off.
	KillOnTimeout time.Duration
}
