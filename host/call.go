package host

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"

	"github.com/procxy/procxy/rpc"
)

// Call calls a result or ack method of the module and decodes the answer
// as Out. An ack without data leaves Out zero.
//
// The call is bounded by ctx and by the method's timeout (Method.Timeout,
// else the child's $init timeout, else Config.CallTimeout); when the
// timeout fires the error matches ErrTimeout and context.DeadlineExceeded.
// Whenever ctx ends or the timeout fires first, the child gets an abort
// frame. A handler failure is a *rpc.RemoteError. When the child dies
// during the call, the error wraps rpc.ErrClosed and why it died: an
// *ExitError for a crash, ErrHeartbeat, ErrConnLost or ErrShutdown.
func Call[Out any](ctx context.Context, m *Module, method string, in any) (Out, error) {
	var out Out
	err := m.call(ctx, method, in, &out)
	return out, err
}

// CallInto is Call with the answer decoded into out, a non-nil pointer,
// instead of returned. With the raw codec, a *[]byte with enough capacity
// receives the result without allocating — the bytes go from the
// connection straight into it — so a loop that fetches large results can
// reuse one buffer.
func CallInto(ctx context.Context, m *Module, method string, in, out any) error {
	if out == nil {
		return fmt.Errorf("host: CallInto %q: out is nil; want a pointer", method)
	}
	return m.call(ctx, method, in, out)
}

func (m *Module) call(ctx context.Context, method string, in, out any) error {
	s, r, err := m.route(method, "Call", rpc.KindResult, rpc.KindAck)
	if err != nil {
		return err
	}
	rm := r.method()
	if r.timeout > 0 {
		// The connection's own timeout watch: no context, timer or
		// allocation per call.
		rm.Timeout = r.timeout
	}
	return s.call(ctx, method, rm, in, out)
}

// call makes a result or ack call on the session under its Recycle
// policy, and turns a timeout of rm's own into the module's timeout error.
func (s *session) call(ctx context.Context, method string, rm rpc.Method, in, out any) error {
	ctx, answered := s.sup.FollowLate(ctx) // for Recycle.KillOnTimeout
	s.sup.Begin()
	err := s.conn.Call(ctx, rm, in, out)
	s.sup.End()
	if errors.Is(err, context.DeadlineExceeded) {
		s.sup.TimedOut(fmt.Sprintf("%q", method), answered)
		if rm.Timeout > 0 && ctx.Err() == nil {
			return timeoutError(s.m.cfg.Name, method, rm.Timeout)
		}
	}
	return s.wrap(ctx, err)
}

// Stream calls a stream method and yields its chunks decoded as Out. The
// request is sent when iteration starts; breaking out of the loop, or ctx
// ending, aborts the call in the child. A failure is yielded once as the
// last pair, with the zero Out. Streams have no timeout: bound them with ctx.
func Stream[Out any](ctx context.Context, m *Module, method string, in any) iter.Seq2[Out, error] {
	return func(yield func(Out, error) bool) {
		var zero Out
		s, r, err := m.route(method, "Stream", rpc.KindStream)
		if err != nil {
			yield(zero, err)
			return
		}
		stream(ctx, s, r.method(), in, yield)
	}
}

// stream yields the chunks of a stream call on s; the stream counts as a
// call in flight for the Recycle policy until it ends.
func stream[Out any](ctx context.Context, s *session, rm rpc.Method, in any, yield func(Out, error) bool) {
	s.sup.Begin()
	defer s.sup.End()
	for v, err := range rpc.StreamOf[Out](ctx, s.conn, rm, in) {
		if err != nil {
			var zero Out
			yield(zero, s.wrap(ctx, err))
			return
		}
		if !yield(v, nil) {
			return
		}
	}
}

// Send calls a fire-and-forget (none) method: it returns once the request
// is written; nothing comes back, and errors in the child's handler are
// not reported.
func Send(ctx context.Context, m *Module, method string, in any) error {
	s, r, err := m.route(method, "Send", rpc.KindNone)
	if err != nil {
		return err
	}
	return s.wrap(ctx, s.conn.Send(ctx, r.method(), in))
}

func (r route) method() rpc.Method {
	return rpc.Method{ID: r.id, Kind: r.def.Kind, Request: r.def.Request, Response: r.def.Response, Name: r.def.Name}
}

// route finds the ready session and the method's route on it.
func (m *Module) route(method, op string, kinds ...rpc.Kind) (*session, route, error) {
	md := m.methods[method]
	if md == nil {
		return nil, route{}, fmt.Errorf("%w: module %q has no method %q (%s)", ErrUnknownMethod, m.cfg.Name, method, op)
	}
	if !slices.Contains(kinds, md.Kind) {
		return nil, route{}, fmt.Errorf("%w: %s %q: module %q declares a %v method; use %s",
			ErrWrongKind, op, method, m.cfg.Name, md.Kind, callFor(md.Kind))
	}
	m.mu.Lock()
	s, st, last := m.sess, m.state, m.err
	m.mu.Unlock()
	if st != StateReady || s == nil {
		return nil, route{}, notReady(m.cfg.Name, st, last)
	}
	if s.sup.Retired() {
		return nil, route{}, fmt.Errorf("%w: module %q is replacing its child (Config.Recycle)", ErrNotReady, m.cfg.Name)
	}
	return s, s.sch.methods[method], nil
}

func callFor(k rpc.Kind) string {
	switch k {
	case rpc.KindStream:
		return "Stream"
	case rpc.KindNone:
		return "Send"
	}
	return "Call"
}

// subscriber is one OnEvent listener.
type subscriber struct {
	deliver func(payload []byte) error
}

// OnEvent calls fn for each event named event that the module's children
// emit, decoded as T with the event's codec (msgpack when the event is not
// declared in the Config). Listeners stay registered across restarts.
// Events are delivered in order, one at a time, on a goroutine of the
// child's connection; fn must not block for long, and must not call
// Shutdown on the same module. An event that cannot be decoded as T is
// logged and skipped. The returned function removes the listener.
func OnEvent[T any](m *Module, event string, fn func(T)) (remove func()) {
	cd := m.eventCodec(event)
	sub := &subscriber{deliver: func(p []byte) error {
		var v T
		if err := cd.Unmarshal(p, &v); err != nil {
			return err
		}
		fn(v)
		return nil
	}}
	m.mu.Lock()
	m.subs[event] = append(slices.Clip(m.subs[event]), sub) // copy on write: deliver reads without the lock
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.subs[event] = slices.DeleteFunc(slices.Clone(m.subs[event]), func(x *subscriber) bool { return x == sub })
	}
}

// deliver hands an event payload to its listeners (connection's event goroutine).
func (m *Module) deliver(event string, payload []byte) {
	m.mu.Lock()
	subs := m.subs[event]
	m.mu.Unlock()
	for _, sub := range subs {
		if err := sub.deliver(payload); err != nil {
			m.log.Warn("host: cannot decode event", "event", event, "err", err)
		}
	}
}
