package rpc

import "context"

// A Late learns whether the peer still answered a call that gave up: a
// handler that ignores its cancellation runs on after the abort, and its
// owner may want to act on that — procxy's Recycle.KillOnTimeout kills a
// child only when its method has not returned within a grace period.
// Calls made without one forget an abandoned call at once.
type Late struct {
	answered chan struct{}
}

type lateKey struct{}

// WithLate returns ctx carrying a new Late. A Call made with the returned
// context that gives up (its context ends or its Method.Timeout passes)
// keeps listening for its answer, and the Late's Answered channel is
// closed when that answer arrives. Nothing is closed for a call that did
// not give up, nor when the connection ends first.
func WithLate(ctx context.Context) (context.Context, *Late) {
	l := &Late{answered: make(chan struct{})}
	return context.WithValue(ctx, lateKey{}, l), l
}

// Answered is closed when the peer answers a call that had given up.
func (l *Late) Answered() <-chan struct{} { return l.answered }

// giveUp removes the call cl gave up on from the pending table, and
// reports whether it did (false: the answer is being delivered right
// now). With a Late in ctx, id is kept until its answer arrives.
func (c *Conn) giveUp(ctx context.Context, id uint32, cl *call) bool {
	l, _ := ctx.Value(lateKey{}).(*Late)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[id] != cl {
		return false
	}
	delete(c.pending, id)
	if l != nil && c.closeErr == nil {
		if c.late == nil {
			c.late = make(map[uint32]*Late)
		}
		c.late[id] = l
	}
	return true
}

// lateAnswer takes the answer to a call that gave up with a Late; it
// reports whether id was such a call. The caller holds c.mu.
func (c *Conn) lateAnswer(id uint32) bool {
	l := c.late[id]
	if l == nil {
		return false
	}
	delete(c.late, id)
	close(l.answered)
	return true
}
