package procxy

import (
	"github.com/procxy/procxy/internal/supervise"
)

// Recycle says when a child is replaced by a fresh one: after a number of
// calls, at an age, over a resident-memory limit, or after a call timed
// out (kill on timeout). Give it to New, NewPool or Func with Recycling;
// package host's modules take the same type in Config.Recycle.
type Recycle = supervise.Recycle

// ErrRecycled is matched by the *ExitError of a child that its Recycle
// policy ended; the error says why.
var ErrRecycled = supervise.ErrRecycled

// Recycling sets the policy that replaces children (see Recycle); the
// default never recycles.
func Recycling(r Recycle) Option { return optionFunc(func(o *options) { o.recycle = r }) }

// recycle starts s's Recycle policy: a retired child takes no more calls
// (the next call starts a new one) and stops once its calls in flight
// have returned.
func (p *Proxy[T]) recycle(s *session) {
	if s.child.sup == nil {
		return // attached: not ours to recycle
	}
	s.child.sup.Recycle(func() { p.detach(s) }, func(cause error) { s.stop(p.o.stopGrace, cause) })
}

// detach makes the next call start a new child instead of using s.
func (p *Proxy[T]) detach(s *session) {
	p.mu.Lock()
	if p.cur == s {
		p.cur = nil
	}
	p.mu.Unlock()
}
