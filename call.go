package procxy

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"

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
	var out R
	err := call(ctx, t, method, args, &out)
	return out, err
}

// CallInto is Call with the result decoded into out, a non-nil pointer,
// instead of returned. A *[]byte with enough capacity receives a []byte
// result without allocating — the bytes go from the connection straight
// into it — so a loop that fetches large results can reuse one buffer.
func CallInto[T any](ctx context.Context, t Target[T], method string, out any, args ...any) error {
	if out == nil {
		return fmt.Errorf("procxy: CallInto %s: out is nil; want a pointer", method)
	}
	return call(ctx, t, method, args, out)
}

// Target is what calls go to: a *Proxy[T], or a *Pool[T] that picks one of
// its proxies for each call.
type Target[T any] interface {
	// acquire returns the proxy for one attempt and a func to call after it.
	acquire(ctx context.Context) (*Proxy[T], func(), error)
	// retryLimit is how many times a failed call may be tried again.
	retryLimit() int
}

func call[T any](ctx context.Context, t Target[T], name string, args []any, out any) error {
	for attempt := 0; ; attempt++ {
		p, release, err := t.acquire(ctx)
		if err != nil {
			return err
		}
		err = p.callOnce(ctx, name, args, out)
		release()
		if err == nil || attempt >= t.retryLimit() || !p.retryable(err, name) {
			return err
		}
	}
}

func (p *Proxy[T]) acquire(context.Context) (*Proxy[T], func(), error) { return p, noRelease, nil }

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
	vec := vecPool.Get().(*codec.Vec)
	defer putVec(vec)
	// The arguments are encoded here, as one msgpack array, so that the
	// []any does not escape (no allocation) and large []byte arguments go
	// to the socket from the caller's memory.
	if err := codec.AppendMsgpackArray(vec, args); err != nil {
		return fmt.Errorf("rpc: encode request: %w", err) // the text rpc.Conn.Call gives
	}
	err = s.conn.Call(ctx, rpc.Method{ID: m.ID, Timeout: p.o.timeout, Name: m.Name}, vec, out)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		return fmt.Errorf("procxy: %s.%s timed out after %v: %w", p.o.key, name, p.o.timeout, err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("procxy: %s.%s: %w", p.o.key, name, err)
	}
	return s.explain(err)
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
func (p *Proxy[T]) retryable(err error, name string) bool {
	var ee *ExitError
	if !errors.As(err, &ee) && !errors.Is(err, rpc.ErrClosed) {
		return false
	}
	return errors.Is(err, rpc.ErrNotSent) || p.o.idempotent[name]
}

// method finds a callable method and checks the argument count locally.
func (s *session) method(key, name string, nargs int, stream bool) (*method, error) {
	m := s.methods[name]
	switch {
	case m == nil:
		return nil, fmt.Errorf("%w: %s has no exported method %q", ErrUnknownMethod, key, name)
	case m.Problem != "":
		return nil, fmt.Errorf("procxy: %s.%s cannot be called: %s", key, name, m.Problem)
	case m.Stream != stream && stream:
		return nil, fmt.Errorf("procxy: %s.%s does not return a stream; use Call", key, name)
	case m.Stream != stream:
		return nil, fmt.Errorf("procxy: %s.%s returns a stream; use Stream", key, name)
	case nargs != m.NumIn:
		return nil, &RemoteError{Code: CodeBadArguments, Name: "ArgumentError",
			Message: fmt.Sprintf("%s.%s takes %d arguments, got %d", key, name, m.NumIn, nargs)}
	}
	return m, nil
}

// Stream calls a method that returns iter.Seq[V], iter.Seq2[V, error] or
// <-chan V and yields its items decoded as R. The child produces items only
// as fast as the loop consumes them (plus a bounded buffer); breaking out of
// the loop or cancelling ctx stops the producer. Streams are bounded by ctx,
// not by the proxy's Timeout. A failure is yielded once, last.
func Stream[R, T any](ctx context.Context, t Target[T], method string, args ...any) iter.Seq2[R, error] {
	return func(yield func(R, error) bool) {
		var zero R
		p, release, err := t.acquire(ctx)
		if err != nil {
			yield(zero, err)
			return
		}
		defer release()
		s, err := p.session(ctx)
		if err != nil {
			yield(zero, err)
			return
		}
		m, err := s.method(p.o.key, method, len(args), true)
		if err != nil {
			yield(zero, err)
			return
		}
		for v, err := range rpc.StreamOf[R](ctx, s.conn, rpc.Method{ID: m.ID, Kind: rpc.KindStream, Name: m.Name}, args) {
			if err != nil {
				yield(zero, s.explain(err))
				return
			}
			if !yield(v, nil) {
				return
			}
		}
	}
}
