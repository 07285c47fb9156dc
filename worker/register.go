package worker

import (
	"context"
	"fmt"
	"time"

	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
)

// maxID is the largest method or event id; 0xFFFE and 0xFFFF are reserved.
const maxID = 0xFFFD

// methodDef is one registered method; its id is its position + 1.
type methodDef struct {
	name    string
	kind    rpc.Kind
	handler rpc.Handler
	timeout *time.Duration // announced in $init when set
}

// eventDef is one registered event; its id is its position + 1.
type eventDef struct {
	name string
}

// Option configures one method or event at registration. Options are built
// by [WithCodec], [WithCodecs] and [WithTimeout].
type Option func(*config)

type config struct {
	req, resp codec.Codec
	twoCodecs bool
	timeout   *time.Duration
}

// WithCodec sets the codec of a method's requests and responses, or of an
// event's payloads. The default is msgpack ([codec.Msgpack]); the other
// Procwire codec is [codec.Raw]. The parent must configure the same codec:
// codecs are never announced. Error payloads are always msgpack.
func WithCodec(c codec.Codec) Option {
	return func(cf *config) { cf.req, cf.resp = c, c }
}

// WithCodecs sets separate codecs for a method's requests and responses
// (Procwire's requestCodec and responseCodec). It does not apply to events.
func WithCodecs(request, response codec.Codec) Option {
	return func(cf *config) { cf.req, cf.resp, cf.twoCodecs = request, response, true }
}

// WithTimeout announces a request timeout for a result or ack method in the
// $init schema. A Procwire parent uses it when its own registration of the
// method has no timeout (protocol §9.1); zero or negative disables the
// parent's default timeout for the method. Milliseconds are announced, so d
// is truncated to the millisecond.
func WithTimeout(d time.Duration) Option {
	return func(cf *config) { cf.timeout = &d }
}

// Result registers a method that answers each request with fn's result, or
// with an error frame when fn returns an error. A *[rpc.RemoteError] gives
// full control over the error the parent sees; any other error is sent as
// {message, name}. fn's context is cancelled when the parent aborts the
// call or the session ends.
//
// Registration functions panic if called after [Worker.Run] started, for a
// name already registered as a method, for an empty name, or past 65533
// methods: these are programming errors.
func Result[In, Out any](w *Worker, name string, fn func(ctx context.Context, in In) (Out, error), opts ...Option) {
	w.addMethod(name, rpc.ResultFunc(fn), opts)
}

// Ack registers a method that answers with an ack frame carrying fn's
// result. A nil result with msgpack is sent as msgpack nil (c0), which the
// Procwire parent reads as null; the reference child's empty payload would
// make the parent fail the call (protocol §6.5). With the raw codec a nil
// result is an empty payload.
func Ack[In, Out any](w *Worker, name string, fn func(ctx context.Context, in In) (Out, error), opts ...Option) {
	w.addMethod(name, rpc.AckFunc(fn), opts)
}

// Stream registers a method that answers with a stream: each call of send
// writes one chunk frame, and returning ends the stream — nil with an end
// frame, an error with a stream error frame. send blocks while the parent
// is not reading (its socket buffer is full), so a producer runs at the
// consumer's pace and memory stays bounded; it returns an error once the
// parent aborted the stream or the session ended, and fn should then return.
func Stream[In, Out any](w *Worker, name string, fn func(ctx context.Context, in In, send func(Out) error) error, opts ...Option) {
	w.addMethod(name, rpc.StreamFunc(fn), opts)
}

// None registers a fire-and-forget method: the parent gets nothing back,
// and an error fn returns is only logged. The parent cannot abort such a
// call; fn's context is cancelled when the session ends.
func None[In any](w *Worker, name string, fn func(ctx context.Context, in In) error, opts ...Option) {
	w.addMethod(name, rpc.SendFunc(func(_ context.Context, in In) error {
		return fn(w.session, in)
	}), opts)
}

func (w *Worker) addMethod(name string, h rpc.Handler, opts []Option) {
	var cf config
	for _, o := range opts {
		o(&cf)
	}
	if cf.timeout != nil && (h.Kind() == rpc.KindStream || h.Kind() == rpc.KindNone) {
		panic(fmt.Sprintf("worker: WithTimeout on %s method %q: the parent times out only result and ack methods", h.Kind(), name))
	}
	if cf.req != nil || cf.resp != nil {
		h = h.WithCodecs(cf.req, cf.resp)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.checkOpenLocked("method", name)
	for _, m := range w.methods {
		if m.name == name {
			panic(fmt.Sprintf("worker: method %q registered twice", name))
		}
	}
	if len(w.methods) == maxID {
		panic(fmt.Sprintf("worker: method %q: more than %d methods", name, maxID))
	}
	w.methods = append(w.methods, &methodDef{name: name, kind: h.Kind(), handler: h, timeout: cf.timeout})
}

// checkOpenLocked panics if registration is closed or name is empty.
func (w *Worker) checkOpenLocked(what, name string) {
	if w.started {
		panic(fmt.Sprintf("worker: %s %q registered after Run started; register everything before Run", what, name))
	}
	if name == "" {
		panic("worker: " + what + " with an empty name")
	}
}

// Emitter sends one event to the parent. Get one from [Event]. It is safe
// for concurrent use.
type Emitter[T any] struct {
	w    *Worker
	name string
	m    rpc.Method
}

// Event registers an event, which gets the next event id (events are
// numbered 1, 2, … separately from methods), and returns its emitter. The
// only option that applies is [WithCodec]. Event panics like [Result].
func Event[T any](w *Worker, name string, opts ...Option) *Emitter[T] {
	var cf config
	for _, o := range opts {
		o(&cf)
	}
	if cf.twoCodecs || cf.timeout != nil {
		panic(fmt.Sprintf("worker: event %q: only WithCodec applies to events", name))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.checkOpenLocked("event", name)
	for _, e := range w.events {
		if e.name == name {
			panic(fmt.Sprintf("worker: event %q registered twice", name))
		}
	}
	if len(w.events) == maxID {
		panic(fmt.Sprintf("worker: event %q: more than %d events", name, maxID))
	}
	w.events = append(w.events, &eventDef{name: name})
	return &Emitter[T]{w: w, name: name, m: rpc.Method{ID: uint16(len(w.events)), Kind: rpc.KindNone, Request: cf.req, Name: name}}
}

// Name returns the event's name.
func (e *Emitter[T]) Name() string { return e.name }

// Emit sends the event to the parent (flags 0x01, request id 0). It blocks
// while the connection cannot take more data. It returns an error wrapping
// ErrNotConnected before the parent's connection is adopted, and one
// wrapping rpc.ErrClosed once the session is over. Events are one-way: the
// parent never answers, and drops events it did not register. With a
// handler's context (or one derived from it) the event goes to the parent
// whose request the handler serves.
func (e *Emitter[T]) Emit(ctx context.Context, v T) error {
	c := rpc.ConnOf(ctx)
	if c == nil {
		c = e.w.conn.Load()
	}
	if c == nil {
		return fmt.Errorf("worker: emit %q: %w", e.name, ErrNotConnected)
	}
	if err := c.Send(ctx, e.m, v); err != nil {
		return fmt.Errorf("worker: emit %q: %w", e.name, err)
	}
	return nil
}
