package procxy

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/procxy/procxy/internal/backoff"
	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
)

// Call calls method on the proxied object with args and returns its result
// decoded as R (use any, or struct{} for methods without a value). It fails
// with ErrUnknownMethod for a method the type does not have, a RemoteError
// with CodeBadArguments for arguments that do not fit, the method's own
// error as a *RemoteError, context.DeadlineExceeded when the proxy's Timeout
// or ctx's deadline passes first, and an *ExitError when the child died.
func Call[R, T any](ctx context.Context, t Target[T], method string, args ...any) (R, error) {
	if p, ok := t.(*Proxy[T]); ok {
		// A direct path, so that out stays on the caller's stack: through
		// the endpoint interface it would escape.
		var out R
		err := p.call(ctx, method, args, &out)
		return out, err
	}
	if pl, ok := t.(*Pool[T]); ok {
		var out R
		err := pl.call(ctx, method, args, &out)
		return out, err
	}
	out := new(R)
	err := call(ctx, resolve(t), method, slices.Clone(args), out) // a copy: args would escape
	return *out, err
}

// stub is a stub written by procxy gen: its calls go to its Target.
type stub[T any] interface{ Target() Target[T] }

// resolve returns where t's calls go: t, or a stub's Target.
func resolve[T any](t Target[T]) Target[T] {
	if s, ok := t.(stub[T]); ok {
		return s.Target()
	}
	return t
}

// CallInto is Call with the result decoded into out, a non-nil pointer,
// instead of returned. A *[]byte with enough capacity receives a []byte
// result without allocating — the bytes go from the connection straight
// into it — so a loop that fetches large results can reuse one buffer.
func CallInto[T any](ctx context.Context, t Target[T], method string, out any, args ...any) error {
	if out == nil {
		return fmt.Errorf("procxy: CallInto %s: out is nil; want a pointer", method)
	}
	if p, ok := t.(*Proxy[T]); ok {
		return p.call(ctx, method, args, out)
	}
	if pl, ok := t.(*Pool[T]); ok {
		return pl.call(ctx, method, args, out)
	}
	return call(ctx, resolve(t), method, slices.Clone(args), out)
}

// Target is what calls go to: a *Proxy[T], a *Pool[T] that picks one of
// its proxies for each call, a *Remote[T] whose calls go to worker
// processes through a message bus, or a stub written by procxy gen, whose
// calls go where its Target method says.
type Target[T any] interface {
	// acquire returns the endpoint for one attempt and a func to call after it.
	acquire(ctx context.Context) (endpoint, func(), error)
	// retryLimit is how many times a failed call may be tried again.
	retryLimit() int
	// listen adds an event listener (OnEvent).
	listen(name string, fn func(msgpack.RawMessage) error) (remove func())
	// of ties the target to T, so that Call infers T from it.
	of(*T)
}

// endpoint is where one attempt of a call goes: a child process (Proxy)
// or the workers behind a subject (Remote).
type endpoint interface {
	callOnce(ctx context.Context, name string, args []any, out any) error
	openStream(ctx context.Context, name string, args []any) (itemStream, error)
	// retryable says whether a call that failed with err may be tried
	// again, and after how long.
	retryable(err error, name string, attempt int) (time.Duration, bool)
}

// itemStream is the items of one streamed call.
type itemStream interface {
	Next(v any) bool
	Err() error
	Close() error
}

func call[T any](ctx context.Context, t Target[T], name string, args []any, out any) error {
	for attempt := 0; ; attempt++ {
		e, release, err := t.acquire(ctx)
		if err != nil {
			return err
		}
		err = e.callOnce(ctx, name, args, out)
		release()
		if err == nil || attempt >= t.retryLimit() {
			return err
		}
		wait, ok := e.retryable(err, name, attempt)
		if !ok {
			return err
		}
		if backoff.Sleep(ctx, wait) != nil {
			return err
		}
	}
}

func (p *Proxy[T]) acquire(context.Context) (endpoint, func(), error) { return p, noRelease, nil }

// call is the retry loop of call for a Proxy, with static calls.
func (p *Proxy[T]) call(ctx context.Context, name string, args []any, out any) error {
	for attempt := 0; ; attempt++ {
		err := p.callOnce(ctx, name, args, out)
		if err == nil || attempt >= p.o.retries {
			return err
		}
		if _, ok := p.retryable(err, name, attempt); !ok {
			return err
		}
	}
}

func (*Proxy[T]) of(*T) {}

var noRelease = func() {}

func (p *Proxy[T]) retryLimit() int { return p.o.retries }

func (p *Proxy[T]) callOnce(ctx context.Context, name string, args []any, out any) error {
	s, err := p.session(ctx)
	if err != nil {
		return err
	}
	m, err := s.method(p.o.key, name, len(args), false)
	if err != nil {
		return err
	}
	args, release, err := m.wireArgs(ctx, &s.cbs, args)
	if err != nil {
		return fromMethod(p.o.key, name, err)
	}
	defer release() // the callbacks expire when the call returns
	vec := vecPool.Get().(*codec.Vec)
	defer putVec(vec)
	// The arguments are encoded here, as one msgpack array, so that the
	// []any does not escape (no allocation) and large []byte arguments go
	// to the socket from the caller's memory.
	if err := codec.AppendMsgpackGoArray(vec, args); err != nil {
		return fromMethod(p.o.key, name, unsendable(args, err))
	}
	ctx, answered := s.child.sup.FollowLate(ctx) // for Recycle.KillOnTimeout
	if s.child.sup != nil {
		s.child.sup.Begin()
	}
	err = s.conn.Call(ctx, rpc.Method{ID: m.ID, Timeout: p.o.callTimeout, Name: m.Name}, vec, out)
	if s.child.sup != nil {
		s.child.sup.End()
	}
	switch {
	case err == nil:
		return nil
	case errors.As(err, new(*codec.ValueError)):
		return fromMethod(p.o.key, name, resultError(out, err))
	case isRemote(err): // the method's own error, which may be a context error
		return fromMethod(p.o.key, name, err)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		s.timedOut(p.o.key, name, answered)
		return fmt.Errorf("procxy: %s.%s timed out after %v: %w", p.o.key, name, p.o.callTimeout, err)
	case errors.Is(err, context.DeadlineExceeded):
		s.timedOut(p.o.key, name, answered)
		return fmt.Errorf("procxy: %s.%s: %w", p.o.key, name, err)
	case errors.Is(err, context.Canceled):
		return fmt.Errorf("procxy: %s.%s: %w", p.o.key, name, err)
	}
	return fromMethod(p.o.key, name, s.explain(err))
}

// timedOut applies Recycle.KillOnTimeout after a call to name timed out;
// answered is closed if its method returns after all.
func (s *session) timedOut(key, name string, answered <-chan struct{}) {
	if s.child.sup != nil {
		s.child.sup.TimedOut(typeLabel(key)+"."+name, answered)
	}
}

func isRemote(err error) bool { _, ok := err.(*RemoteError); return ok }

// unsendable is the error for arguments that cannot be encoded: it names
// the first one and its Go type.
func unsendable(args []any, err error) *RemoteError {
	for i, a := range args {
		if _, e := msgpackCodec.Append(nil, a); e != nil {
			re := argError("argument %d (%T) cannot be sent to another process", i+1, a)
			re.Err = e
			return re
		}
	}
	re := argError("the arguments cannot be sent to another process")
	re.Err = err
	return re
}

// resultError is the error for a result that does not decode into out.
func resultError(out any, err error) *RemoteError {
	want := reflect.TypeOf(out).Elem()
	var ve *codec.ValueError
	msg := fmt.Sprintf("the result does not decode into %v", want)
	if errors.As(err, &ve) {
		switch {
		case ve.Value != "" && ve.Path != "":
			msg = fmt.Sprintf("the result (%s): %s does not fit in %v", ve.Path, ve.Value, ve.Want)
		case ve.Value != "":
			msg = fmt.Sprintf("the result %s does not fit in %v", ve.Value, want)
		case !ve.Nested:
			msg = fmt.Sprintf("the result is %s, want %v", ve.Got, want)
		}
	}
	return &RemoteError{Name: "ResultError", Code: rpc.CodeBadResult, Message: msg, Err: err}
}

// vecPool holds the Vecs call arguments are encoded into.
var vecPool = sync.Pool{New: func() any { return new(codec.Vec) }}

func putVec(v *codec.Vec) {
	if v.Cap() > 64<<10 {
		return // a large argument list: let it go
	}
	v.Reset()
	vecPool.Put(v)
}

// retryable: the child died and the call provably never started, or the
// method is idempotent.
func (p *Proxy[T]) retryable(err error, name string, _ int) (time.Duration, bool) {
	var ee *ExitError
	if errors.Is(err, ErrClosed) || !errors.As(err, &ee) && !errors.Is(err, rpc.ErrClosed) {
		return 0, false
	}
	return 0, errors.Is(err, rpc.ErrNotSent) || p.o.isIdempotent(name)
}

// method finds a callable method and checks the argument count locally.
func (s *session) method(key, name string, nargs int, stream bool) (*method, error) {
	return findMethod(s.methods, key, name, nargs, stream)
}

// findMethod finds a callable method of the type key among methods and
// checks the argument count locally.
func findMethod(methods map[string]*method, key, name string, nargs int, stream bool) (*method, error) {
	m := methods[name]
	switch {
	case m == nil:
		return nil, fmt.Errorf("%w: %s has no exported method %q", ErrUnknownMethod, typeLabel(key), name)
	case m.Problem != "":
		return nil, fmt.Errorf("procxy: %s.%s cannot be called: %s", key, name, m.Problem)
	case m.Stream != stream && stream:
		return nil, fmt.Errorf("procxy: %s.%s does not return a stream; use Call", key, name)
	case m.Stream != stream:
		return nil, fmt.Errorf("procxy: %s.%s returns a stream; use Stream", key, name)
	case m.Variadic && nargs < m.NumIn-1:
		return nil, fromMethod(key, name, argCountAtLeast(m.NumIn-1, nargs))
	case !m.Variadic && nargs != m.NumIn:
		return nil, fromMethod(key, name, argCount(m.NumIn, nargs))
	}
	return m, nil
}

// Stream calls a method that returns iter.Seq[V], iter.Seq2[V, error] or
// <-chan V and yields its items decoded as R. The child produces items only
// as fast as the loop consumes them (plus a bounded buffer); breaking out of
// the loop or cancelling ctx stops the producer. Streams are bounded by ctx,
// not by the proxy's Timeout. A failure is yielded once, last.
func Stream[R, T any](ctx context.Context, t Target[T], method string, args ...any) iter.Seq2[R, error] {
	t = resolve(t)
	return func(yield func(R, error) bool) {
		var zero R
		e, release, err := t.acquire(ctx)
		if err != nil {
			yield(zero, err)
			return
		}
		defer release()
		st, err := e.openStream(ctx, method, args)
		if err != nil {
			yield(zero, err)
			return
		}
		defer st.Close()
		for {
			var v R
			if !st.Next(&v) {
				break
			}
			if !yield(v, nil) {
				return
			}
		}
		if err := st.Err(); err != nil {
			yield(zero, err)
		}
	}
}

// openStream starts a streamed call in the child.
func (p *Proxy[T]) openStream(ctx context.Context, name string, args []any) (itemStream, error) {
	s, err := p.session(ctx)
	if err != nil {
		return nil, err
	}
	m, err := s.method(p.o.key, name, len(args), true)
	if err != nil {
		return nil, err
	}
	if s.child.sup != nil {
		s.child.sup.Begin() // a stream counts as a call for Recycle; Close ends it
	}
	st, err := s.conn.OpenStream(ctx, rpc.Method{ID: m.ID, Kind: rpc.KindStream, Name: m.Name}, m.errorArgs(args))
	if err != nil {
		if s.child.sup != nil {
			s.child.sup.End()
		}
		if _, e := msgpackCodec.Append(nil, args); e != nil {
			return nil, fromMethod(p.o.key, name, unsendable(args, e))
		}
		return nil, fromMethod(p.o.key, name, s.explain(err))
	}
	return explained{st, s, p.o.key, name}, nil
}

// explained is a child's stream whose failure names the method and says
// how the child ended.
type explained struct {
	*rpc.Stream
	s         *session
	key, name string
}

// Close ends the stream, and its count as a call in flight.
func (e explained) Close() error {
	err := e.Stream.Close()
	if e.s.child.sup != nil {
		e.s.child.sup.End()
	}
	return err
}

func (e explained) Err() error {
	if err := e.Stream.Err(); err != nil {
		return fromMethod(e.key, e.name, e.s.explain(err))
	}
	return nil
}
