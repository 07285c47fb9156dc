package rpc

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/procxy/procxy/internal/readturn"
	"github.com/procxy/procxy/observe"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/rpc/wire"
)

// request is one incoming call being served. It is also the handler's
// context: Done is closed when the peer aborts the call or the connection
// ends, and the context must not be used after the handler returns.
type request struct {
	conn   *Conn
	h      *Handler
	method uint16
	id     uint32
	event  bool // id 0 frame from a child: delivered in order

	payload []byte
	owned   bool           // payload was allocated for this request alone: a decoded value may keep it
	buf     *[]byte        // pooled copy of the payload, returned after decoding
	large   []byte         // a reused large buffer the payload was read into (raw Payload handlers)
	keep    bool           // the handler takes the payload as a Payload: release it when the handler returns
	result  []byte         // a []byte result, boxed as a pointer to this field
	meta    observe.Header // the request's metadata (FlagMeta), kept when there is an Observer
	size    int            // the request payload's size, for an Observer
	sent    int64          // bytes of stream chunks sent, for an Observer; owned by the handler
	inline  [128]byte

	mu    sync.Mutex
	done  chan struct{} // made on first use; guarded by mu
	err   error         // guarded by mu
	ended bool          // a stream's chunks must stop; guarded by mu
}

func (r *request) Deadline() (time.Time, bool) { return time.Time{}, false }

// Value holds the connection (ConnOf) and nothing else.
func (r *request) Value(key any) any {
	if key == (connKey{}) {
		return r.conn
	}
	return nil
}

func (r *request) Done() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done == nil {
		r.done = make(chan struct{})
		if r.err != nil {
			close(r.done)
		}
	}
	return r.done
}

func (r *request) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// cancel cancels the handler's context; cause only goes to the log.
func (r *request) cancel(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = context.Canceled
		if r.done != nil {
			close(r.done)
		}
	}
}

func (r *request) String() string {
	return fmt.Sprintf("rpc.request(method %d, id %d)", r.method, r.id)
}

func (r *request) codecs() (req, resp codec.Codec) {
	req, resp = r.h.req, r.h.resp
	if req == nil {
		req = r.conn.codec
	}
	if resp == nil {
		resp = r.conn.codec
	}
	return req, resp
}

// decode decodes the request payload into v and releases the payload.
func (r *request) decode(v any) error {
	if p, ok := v.(*Payload); ok {
		p.Bytes, p.Owned = r.payload, r.owned
		r.keep = true
		return nil
	}
	req, _ := r.codecs()
	err := unmarshal(req, r.payload, r.owned, v)
	r.release()
	if err != nil {
		return &RemoteError{Name: "DecodeError", Code: "bad_request", Message: fmt.Sprintf("method %d: cannot decode the request: %v", r.method, err)}
	}
	return nil
}

// release returns the payload's pooled buffer.
func (r *request) release() {
	r.payload = nil
	if r.buf != nil {
		putBuf(r.buf)
		r.buf = nil
	}
	if r.large != nil {
		r.conn.large.put(r.large)
		r.large = nil
	}
}

// Payload is a request's payload as it arrived, for a handler that decodes
// it itself or serves the bytes in place: declare a handler's input type as
// Payload (ResultFunc[Payload, Out] and the others) and the request is not
// decoded.
//
// Bytes is valid until the handler's reply has been written — a result
// handler may return a slice of it as its result — or, for a stream or
// fire-and-forget handler, until it returns. When Owned is set, Bytes was
// allocated for this request alone (a large payload read straight into a
// slice of its own) and the handler may keep it, or values that alias it.
//
// With the raw codec (the bytes are the data), a large payload is read
// into a buffer the connection reuses for later requests once the reply
// has been written: a raw echo or a handler that reads the bytes in place
// moves megabytes without allocating. Owned is then false.
type Payload struct {
	Bytes []byte
	Owned bool
}

// unmarshal decodes payload into v; an owned payload holding raw bytes
// (the raw codec, or a msgpack binary decoded into a *[]byte) is handed
// over without a copy.
func unmarshal(c codec.Codec, payload []byte, owned bool, v any) error {
	if owned {
		if p, ok := v.(*[]byte); ok {
			switch c {
			case codec.Raw:
				*p = payload
				return nil
			case codec.Msgpack, codec.MsgpackGo:
				if b, ok := codec.MsgpackBytes(payload); ok {
					*p = b
					return nil
				}
			}
		}
	}
	return c.Unmarshal(payload, v)
}

// routeRequest serves one request frame, or queues it for serving. Events
// go to the in-order dispatcher. A background reader serves a request whose
// handler has been quick on its own goroutine (inline), other requests go
// to a worker goroutine. A waiting caller that reads a request never blocks
// on it: if the event queue or the handler limit is full it holds the frame
// and yields the turn to a background reader.
func (c *Conn) routeRequest(f wire.Frame, background bool) readturn.Status {
	lent := c.lent
	c.lent = nil
	h := c.opts.Handlers.lookup(f.Method)
	if h == nil {
		if lent != nil {
			c.large.put(lent)
		}
		c.unknownMethod(f)
		return readturn.Continue
	}
	r := &request{conn: c, h: h, method: f.Method, id: f.ID}
	if f.Flags&wire.FlagMeta != 0 {
		var err error
		if r.meta, f.Payload, err = cutMeta(f.Payload, c.opts.Observer != nil); err != nil {
			if lent != nil {
				c.large.put(lent)
			}
			c.fail(err)
			return readturn.Stopped
		}
	}
	r.size = len(f.Payload)
	switch {
	case f.Owned && lent != nil:
		r.payload, r.large = f.Payload, lent // read into a reused buffer
	case f.Owned && h.payload && h.req == codec.Raw:
		r.payload, r.large = f.Payload, f.Payload // reused once the reply is out
	case f.Owned:
		r.payload, r.owned = f.Payload, true
	case h.req == codec.Raw && len(f.Payload) > len(r.inline):
		// Raw bytes are handed to the handler as they are: copy them once,
		// into a slice of their own.
		r.payload, r.owned = append(make([]byte, 0, len(f.Payload)), f.Payload...), true
	case h.req == codec.Raw && len(f.Payload) > 0:
		// Small raw bytes stay in the request, which is never reused.
		n := copy(r.inline[:], f.Payload)
		r.payload, r.owned = r.inline[:n:n], true
	case len(f.Payload) <= len(r.inline):
		r.payload = r.inline[:copy(r.inline[:], f.Payload)]
	default:
		r.buf = getBuf()
		*r.buf = append((*r.buf)[:0], f.Payload...)
		r.payload = *r.buf
	}
	if f.ID == 0 && f.Flags.Has(wire.FlagToParent) {
		// An event (or notification) from a child: keep the order.
		r.event = true
		c.ev.read++ // answers read after this one wait for it (see eventOrder)
		select {
		case c.events <- r:
		default:
			if !background {
				c.held = func() readturn.Status { c.queueEvent(r); return readturn.Continue }
				return readturn.Yield
			}
			c.queueEvent(r)
		}
		return readturn.Continue
	}
	select {
	case c.sem <- struct{}{}:
	default:
		if !background {
			c.held = func() readturn.Status { return c.startLimited(r) }
			return readturn.Yield
		}
		return c.startLimited(r)
	}
	return c.startRequest(r, background, c.r.HasFrame())
}

// startLimited waits for a handler token, which stops the reading when
// MaxHandlers requests are being served, and starts r.
func (c *Conn) startLimited(r *request) readturn.Status {
	select {
	case c.sem <- struct{}{}:
	case <-c.done:
		return readturn.Continue
	}
	return c.startRequest(r, true, c.r.HasFrame())
}

func (c *Conn) queueEvent(r *request) {
	select {
	case c.events <- r:
	case <-c.done:
	}
}

// Inline serving. A handler whose recent runs took less than inlineQuick
// is served on the background reader's goroutine even when more requests
// are waiting; one that took less than inlineMax only when nothing else is
// buffered (so a burst of slower requests gets more than one goroutine).
// Anything slower goes to a worker: it would hold up reading.
const (
	inlineQuick = 10 * time.Microsecond
	inlineMax   = 200 * time.Microsecond
)

// startRequest serves r, which holds a handler token: inline when the
// caller is the background reader and the handler is quick, else on a
// worker. more says whether another frame is buffered behind r.
func (c *Conn) startRequest(r *request, background, more bool) readturn.Status {
	if !c.track(r) {
		<-c.sem
		return readturn.Continue
	}
	avg := time.Duration(r.h.cost.avg.Load())
	if !background || r.h.kind == KindStream || avg >= inlineMax || (more && avg >= inlineQuick) {
		c.toWorker(r)
		return readturn.Continue
	}
	token := c.turn.BeginInline()
	c.serve(r, more)
	<-c.sem
	if !c.turn.EndInline(token) {
		c.w.Flush() // whoever took the turn may not read again soon
		return readturn.Lost
	}
	return readturn.Continue
}

// toWorker hands r to an idle worker goroutine, or starts one.
func (c *Conn) toWorker(r *request) {
	select {
	case c.work <- r:
	default:
		c.wg.Go(func() { c.worker(r) })
	}
}

// worker serves r, then waits for more work as one of at most maxIdle idle
// workers, so that goroutines whose stacks have grown are reused.
func (c *Conn) worker(r *request) {
	for {
		c.serve(r, false)
		<-c.sem
		if c.idlers.Add(1) > maxIdle {
			c.idlers.Add(-1)
			return
		}
		select {
		case r = <-c.work:
			c.idlers.Add(-1)
		case <-c.done:
			c.idlers.Add(-1)
			return
		}
	}
}

// track records a request so that the connection's end cancels it; it
// reports false when the connection has already ended.
func (c *Conn) track(r *request) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr != nil {
		return false
	}
	if r.id != 0 {
		c.serving[r.id] = r
	} else {
		c.anon[r] = true
	}
	return true
}

// unknownMethod answers a request for a method without a handler with the
// exact error the Procwire reference child sends. Events from a child that
// nobody listens to are dropped.
func (c *Conn) unknownMethod(f wire.Frame) {
	if f.ID == 0 && f.Flags.Has(wire.FlagToParent) {
		c.log.Debug("rpc: dropped an event without listener", "event", f.Method)
		return
	}
	msg := fmt.Sprintf("Unknown method ID: %d", f.Method)
	c.wg.Go(func() { // never write from the reader goroutine
		b := getBuf()
		*b, _ = codec.Msgpack.Append((*b)[:0], msg)
		c.write(f.Method, wire.FlagResponse|wire.FlagError, f.ID, *b)
		putBuf(b)
	})
}

func (c *Conn) abortServing(id uint32) {
	c.mu.Lock()
	r := c.serving[id]
	c.mu.Unlock()
	if r != nil {
		r.cancel(errors.New("aborted by the peer"))
	}
}

// serve runs the handler and sends its reply; with queue set the reply is
// added to the next write (more input is buffered).
func (c *Conn) serve(r *request, queue bool) {
	var ctx context.Context = r
	var ob *served
	if c.opts.Observer != nil {
		ob = c.startServed(r)
		ctx = ob.ctx
	}
	start := time.Now()
	v, err := c.run(ctx, r)
	r.h.cost.add(int64(time.Since(start)))
	n := c.answer(r, v, err, queue)
	if ob != nil {
		c.endServed(ob, n, err)
	}
}

// answer sends the reply to a request whose handler returned v and err,
// and returns the number of payload bytes sent (chunks included).
func (c *Conn) answer(r *request, v any, err error, queue bool) int64 {
	c.answering.Add(1) // before r leaves serving: Shutdown waits for the reply
	defer c.answering.Add(-1)
	if r.keep {
		defer r.release() // after the reply, which may be a slice of the payload
	}
	c.mu.Lock()
	if r.id == 0 {
		delete(c.anon, r)
	} else if c.serving[r.id] == r {
		delete(c.serving, r.id)
	}
	c.mu.Unlock()
	if r.id == 0 { // fire-and-forget: nothing goes back
		if err != nil {
			c.log.Warn("rpc: fire-and-forget handler failed", "method", r.method, "err", err)
		}
		return 0
	}
	if err != nil {
		flags := wire.FlagResponse | wire.FlagError
		if r.h.kind == KindStream {
			flags |= wire.FlagStream
		}
		b := getBuf()
		*b = appendError((*b)[:0], err)
		n := int64(len(*b))
		c.send(r.method, flags, r.id, *b, queue)
		putBuf(b)
		return r.sent + n
	}
	switch r.h.kind {
	case KindStream:
		c.send(r.method, wire.FlagResponse|wire.FlagStream|wire.FlagStreamEnd, r.id, nil, queue)
		return r.sent
	case KindAck:
		return c.reply(r, wire.FlagResponse|wire.FlagAck, v, queue)
	default:
		return c.reply(r, wire.FlagResponse, v, queue)
	}
}

// run calls the handler, turning a panic into a RemoteError with the stack.
func (c *Conn) run(ctx context.Context, r *request) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &RemoteError{Name: "panic", Message: fmt.Sprint(p), Stack: string(debug.Stack())}
			c.log.Debug("rpc: handler panicked", "method", r.method, "panic", p) // the caller gets it
		}
	}()
	return r.h.serve(ctx, r)
}

// reply encodes v with the response codec and sends it; an encoding failure
// becomes an error reply, so the caller is never left waiting.
// It returns the payload's size.
func (c *Conn) reply(r *request, flags wire.Flags, v any, queue bool) int64 {
	_, resp := r.codecs()
	if v == nil && flags.Has(wire.FlagAck) && resp == codec.Raw {
		c.send(r.method, flags, r.id, nil, queue) // an ack without data
		return 0
	}
	vec := getVec()
	defer putVec(vec)
	if err := codec.AppendVec(resp, vec, v); err != nil {
		b := getBuf()
		*b = appendError((*b)[:0], &RemoteError{Name: "EncodeError", Code: "bad_response",
			Message: fmt.Sprintf("method %d: cannot encode the result: %v", r.method, err)})
		n := int64(len(*b))
		c.send(r.method, wire.FlagResponse|wire.FlagError, r.id, *b, queue)
		putBuf(b)
		return n
	}
	n := int64(vec.Len())
	c.sendVec(r.method, flags, r.id, vec, queue)
	return n
}

// sendChunk writes one stream chunk; it blocks while the transport is full.
func (r *request) sendChunk(v any) error {
	if err := r.Err(); err != nil {
		return ErrStreamAbandoned
	}
	_, resp := r.codecs()
	vec := getVec()
	defer putVec(vec)
	if err := codec.AppendVec(resp, vec, v); err != nil {
		return fmt.Errorf("rpc: encode stream chunk: %w", err)
	}
	r.sent += int64(vec.Len())
	return r.conn.sendVec(r.method, wire.FlagResponse|wire.FlagStream, r.id, vec, false)
}
