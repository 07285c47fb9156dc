package procxy

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/procxy/procxy/observe"
)

// Observe reports to ob (see package observe) every call the proxy makes —
// method name, duration, bytes each way, error — and its children's
// spawns, exits and restarts. Given to Main (or ServeAt) in the child, it
// reports the calls the child serves, each with the trace context of the
// parent's call (it travels in the request; docs/PROTOCOL.md), so that a
// tracing Observer such as github.com/procxy/procxy/otel puts both sides
// in one trace. Without Observe nothing is observed, at no cost.
func Observe(ob observe.Observer) Option {
	return optionFunc(func(o *options) { o.observer = ob })
}

// observeChild reports a child event to the proxy's Observer.
func (p *Proxy[T]) observeChild(kind observe.ChildKind, pid int, err error) {
	if ob := p.o.observer; ob != nil {
		ob.Child(observe.ChildEvent{Kind: kind, Service: p.o.key, PID: pid, Err: err, Time: time.Now()})
	}
}

// observeExit reports the exit of s's child, e; an exit the proxy asked
// for (Close, Kill) has no error.
func (p *Proxy[T]) observeExit(s *session, e *ExitError, asked bool) {
	var err error
	if !asked {
		err = e
	}
	p.observeChild(observe.ChildExit, s.pid, err)
}

// serviceObserver names the calls a child serves after the type key the
// parent asked for, which the child learns from the $new call.
type serviceObserver struct {
	observe.Observer
	key atomic.Pointer[string]
}

func (s *serviceObserver) name(c *observe.Call) {
	if k := s.key.Load(); k != nil && c.Service == "" {
		c.Service = *k
	}
}

func (s *serviceObserver) CallStart(ctx context.Context, c *observe.Call) context.Context {
	s.name(c)
	return s.Observer.CallStart(ctx, c)
}

func (s *serviceObserver) CallEnd(ctx context.Context, c *observe.Call) {
	s.name(c)
	s.Observer.CallEnd(ctx, c)
}
