package rpc

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/procxy/procxy/rpc/codec"
)

// Kind is a method's response kind (Procwire's response type).
type Kind uint8

const (
	// KindResult: one result frame, or an error frame. The zero Kind means KindResult.
	KindResult Kind = iota
	// KindAck: one ack frame (or a result frame), or an error frame.
	KindAck
	// KindStream: chunk frames, then an end or error frame.
	KindStream
	// KindNone: fire-and-forget; request id 0 and no reply. Events are KindNone too.
	KindNone
)

func (k Kind) String() string {
	switch k {
	case KindResult:
		return "result"
	case KindAck:
		return "ack"
	case KindStream:
		return "stream"
	case KindNone:
		return "none"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Handler serves one method. Build it with [ResultFunc], [AckFunc],
// [StreamFunc] or [SendFunc]; the zero Handler is not usable.
type Handler struct {
	kind      Kind
	req, resp codec.Codec // nil: the connection's codec
	// serve decodes the request with dec and runs the user function. For
	// result and ack handlers it returns the value to send; stream handlers
	// send their chunks through r and return nil.
	serve func(ctx context.Context, r *request) (any, error)
	// cost is how long the handler has recently taken to run; it decides
	// whether a request is served on the goroutine that read it.
	cost *cost
	// payload: the input is a Payload (the handler decodes it itself).
	payload bool
	// name names the method to an Options.Observer (Named).
	name string
}

// isPayload reports whether In is Payload.
func isPayload[In any]() bool {
	var zero In
	_, ok := any(zero).(Payload)
	return ok
}

// cost is an exponentially weighted moving average of a handler's run
// time in nanoseconds, shared by the copies of one Handler.
type cost struct{ avg atomic.Int64 }

func (c *cost) add(ns int64) {
	old := c.avg.Load()
	c.avg.Store(old + (ns-old)/4) // racy updates lose a sample at worst
}

// Kind returns the handler's response kind.
func (h Handler) Kind() Kind { return h.kind }

// Named returns a copy of h whose method an Options.Observer sees as
// name; without a name it sees "#<id>".
func (h Handler) Named(name string) Handler { h.name = name; return h }

// WithCodec returns a copy of h that decodes requests and encodes responses with c.
func (h Handler) WithCodec(c codec.Codec) Handler { h.req, h.resp = c, c; return h }

// WithCodecs returns a copy of h with separate request and response codecs.
func (h Handler) WithCodecs(request, response codec.Codec) Handler {
	h.req, h.resp = request, response
	return h
}

// ResultFunc returns a handler that answers with fn's result.
func ResultFunc[In, Out any](fn func(ctx context.Context, in In) (Out, error)) Handler {
	return Handler{kind: KindResult, cost: new(cost), payload: isPayload[In](), serve: func(ctx context.Context, r *request) (any, error) {
		in, err := decodeIn[In](r)
		if err != nil {
			return nil, err
		}
		out, err := fn(ctx, in)
		if err != nil {
			return nil, err
		}
		if b, ok := any(out).([]byte); ok {
			r.result = b // no allocation to box a slice header
			return &r.result, nil
		}
		return out, nil
	}}
}

// AckFunc returns a handler that answers with an ack frame carrying fn's
// result; a nil result sends an ack with no data.
func AckFunc[In, Out any](fn func(ctx context.Context, in In) (Out, error)) Handler {
	h := ResultFunc(fn)
	h.kind = KindAck
	return h
}

// StreamFunc returns a handler that streams: each send writes one chunk
// frame and blocks while the connection cannot take more data, so a slow
// consumer slows the producer. send fails once the call is aborted or the
// connection is gone; fn should then return. When fn returns nil the stream
// ends; an error ends it with a stream error frame.
func StreamFunc[In, Out any](fn func(ctx context.Context, in In, send func(Out) error) error) Handler {
	return Handler{kind: KindStream, cost: new(cost), payload: isPayload[In](), serve: func(ctx context.Context, r *request) (any, error) {
		in, err := decodeIn[In](r)
		if err != nil {
			return nil, err
		}
		return nil, fn(ctx, in, func(v Out) error { return r.sendChunk(v) })
	}}
}

// SendFunc returns a handler for fire-and-forget requests, the ones a peer
// sends with [Conn.Send] (events included): nothing is sent back, and an
// error fn returns is only logged. It pairs with Send as [ResultFunc] does
// with [Conn.Call] and [StreamFunc] with [OpenStream].
func SendFunc[In any](fn func(ctx context.Context, in In) error) Handler {
	return Handler{kind: KindNone, cost: new(cost), payload: isPayload[In](), serve: func(ctx context.Context, r *request) (any, error) {
		in, err := decodeIn[In](r)
		if err != nil {
			return nil, err
		}
		return nil, fn(ctx, in)
	}}
}

// decodeIn decodes r's payload as an In. Raw bytes for a []byte input are
// taken as they are, without the allocation of decoding through an
// interface.
func decodeIn[In any](r *request) (In, error) {
	var zero In
	if _, ok := any(zero).(Payload); ok {
		r.keep = true
		return any(Payload{Bytes: r.payload, Owned: r.owned}).(In), nil
	}
	if _, ok := any(zero).([]byte); ok {
		if req, _ := r.codecs(); req == codec.Raw && r.owned {
			b := r.payload
			r.release()
			return any(b).(In), nil
		}
	}
	in := new(In)
	err := r.decode(in)
	return *in, err
}

// Mux maps method ids to handlers. It is safe for concurrent use, and
// handlers may be added while connections using it are running. The zero
// Mux has no handlers.
type Mux struct {
	mu       sync.Mutex                 // serializes Handle
	handlers atomic.Pointer[[]*Handler] // copy on write, indexed by method id
}

// Handle registers h for method id, replacing any earlier handler. It panics
// if id is one of the reserved ids (0, 0xFFFE, 0xFFFF) or h is the zero Handler.
func (m *Mux) Handle(id uint16, h Handler) {
	if id == 0 || id >= 0xFFFE {
		panic(fmt.Sprintf("rpc: method id %#04x is reserved", id))
	}
	if h.serve == nil {
		panic("rpc: Handle with the zero Handler")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var cur []*Handler
	if p := m.handlers.Load(); p != nil {
		cur = *p
	}
	next := make([]*Handler, max(len(cur), int(id)+1))
	copy(next, cur)
	next[id] = &h
	m.handlers.Store(&next)
}

// lookup returns the handler for id, or nil.
func (m *Mux) lookup(id uint16) *Handler {
	if m == nil {
		return nil
	}
	p := m.handlers.Load()
	if p == nil || int(id) >= len(*p) {
		return nil
	}
	return (*p)[id]
}

// connKey is the context key of a handler's connection (ConnOf).
type connKey struct{}

// ConnOf returns the connection a handler's request arrived on, from the
// handler's context or one derived from it, so that the handler can call
// its peer back (the connection is bidirectional); nil for any other
// context.
func ConnOf(ctx context.Context) *Conn {
	c, _ := ctx.Value(connKey{}).(*Conn)
	return c
}
