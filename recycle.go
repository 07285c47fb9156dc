package procxy

import (
	"fmt"
	"sync"
	"time"

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

// recycling is a session's part in its proxy's Recycle policy.
type recycling struct {
	mu      sync.Mutex    // guards the fields below
	calls   int           // calls started on the session
	busy    int           // calls in flight
	retired bool          // it takes no more calls; it stops once idle
	idle    chan struct{} // closed when retired and no call is in flight
}

// begin counts a call on s and retires s when it reaches Recycle.Calls;
// the call runs, and end must follow it.
func (p *Proxy[T]) begin(s *session) {
	r := &s.recycle
	r.mu.Lock()
	r.calls++
	r.busy++
	full := p.o.recycle.Calls > 0 && r.calls >= p.o.recycle.Calls
	r.mu.Unlock()
	if full {
		p.retire(s, fmt.Sprintf("served %d calls (Recycle.Calls)", p.o.recycle.Calls))
	}
}

func (p *Proxy[T]) end(s *session) {
	r := &s.recycle
	r.mu.Lock()
	defer r.mu.Unlock()
	r.busy--
	if r.retired && r.busy == 0 {
		close(r.idle)
	}
}

// retire takes s out of service: the next call starts a new child, and s
// stops once its calls in flight have returned.
func (p *Proxy[T]) retire(s *session, why string) {
	r := &s.recycle
	r.mu.Lock()
	if r.retired {
		r.mu.Unlock()
		return
	}
	r.retired = true
	if r.busy == 0 {
		close(r.idle)
	}
	r.mu.Unlock()
	p.detach(s)
	go func() {
		select {
		case <-r.idle:
		case <-s.exited:
			return
		}
		s.stop(p.o.stopGrace, &supervise.RecycleError{Why: why})
	}()
}

// detach makes the next call start a new child instead of using s.
func (p *Proxy[T]) detach(s *session) {
	p.mu.Lock()
	if p.cur == s {
		p.cur = nil
	}
	p.mu.Unlock()
}

// recycleAtAge retires s at Recycle.Age; the func returned stops the timer.
func (p *Proxy[T]) recycleAtAge(s *session) (stop func()) {
	age := p.o.recycle.Age
	if age <= 0 {
		return func() {}
	}
	t := time.AfterFunc(age, func() { p.retire(s, fmt.Sprintf("reached its age limit %v (Recycle.Age)", age)) })
	return func() { t.Stop() }
}

// timedOut applies Recycle.KillOnTimeout after a call to name on s timed
// out: the child is killed once the grace has passed, unless it ended.
func (p *Proxy[T]) timedOut(s *session, name string) {
	grace := p.o.recycle.KillOnTimeout
	if grace <= 0 || s.child.sup == nil {
		return
	}
	t := time.NewTimer(grace)
	go func() {
		defer t.Stop()
		select {
		case <-s.exited:
			return
		case <-t.C:
		}
		p.detach(s)
		s.child.sup.Kill(&supervise.RecycleError{Why: fmt.Sprintf("a call to %s.%s timed out and the child was killed %v later (Recycle.KillOnTimeout)", typeLabel(p.o.key), name, grace)})
	}()
}
