package rpc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procxy/procxy/internal/readturn"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/rpc/wire"
)

// Method describes a method on the peer, as the caller sees it.
type Method struct {
	ID   uint16 // 1..0xFFFD
	Kind Kind   // how the peer answers; the zero value is KindResult
	// Request and Response are the payload codecs; nil means the connection's codec.
	Request, Response codec.Codec
	// Timeout bounds a Call (not a stream) as a context deadline would, without
	// the cost of a derived context; zero means none. The call then fails with
	// context.DeadlineExceeded after sending an abort frame.
	Timeout time.Duration
	// Name names the method to an Options.Observer; empty means "#<id>".
	Name string
}

func (m Method) codecs(c *Conn) (req, resp codec.Codec) {
	req, resp = m.Request, m.Response
	if req == nil {
		req = c.codec
	}
	if resp == nil {
		resp = c.codec
	}
	return req, resp
}

// call is an outgoing request waiting for its answer. Whoever removes it
// from Conn.pending owns its completion: the reader, the caller giving up,
// the timeout watch, or the connection failing.
type call struct {
	kind     Kind
	resp     codec.Codec
	out      any
	err      error
	stream   *Stream
	turn     *readturn.Arbiter
	w        readturn.Waiter // the caller's wait, which reads the connection while nobody else does
	deadline int64           // Method.Timeout as a monotonic time (see now); 0 means none; guarded by Conn.mu
	n        int             // the answer's payload size, for an Observer
	events   uint64          // events read before the answer (see eventOrder)
	base     uint64          // events the dispatcher had taken when the call was made
	expired  atomic.Bool     // the timeout watch cancelled the wait
}

var callPool = sync.Pool{New: func() any { return new(call) }}

// finish completes a call that was removed from the pending table.
func (cl *call) finish(err error) {
	if cl.stream != nil {
		cl.stream.finish(err)
		return
	}
	cl.err = err
	cl.turn.Done(&cl.w)
}

// register assigns a request id to cl and records it. Ids start at 1, wrap
// after 0xFFFFFFFF to 1, and skip ids still pending after a wrap.
func (c *Conn) register(cl *call) (uint32, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeErr != nil {
		return 0, fmt.Errorf("%w: %w", ErrNotSent, c.closeErr)
	}
	if c.draining.Load() {
		return 0, errShutdown
	}
	for {
		id := c.ids.next()
		if _, busy := c.pending[id]; !busy && (len(c.late) == 0 || c.late[id] == nil) {
			c.pending[id] = cl
			return id, nil
		}
	}
}

// unregister removes id if it still maps to cl and reports whether it did.
func (c *Conn) unregister(id uint32, cl *call) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[id] == cl {
		delete(c.pending, id)
		return true
	}
	return false
}

// encode encodes v with cd into a pooled Vec; release it with putVec when
// pooled is true. Large byte slices of v are referenced, not copied
// (codec.VecAppender). A *codec.Vec is taken as already encoded. A msgpack
// payload is never empty (nil encodes as c0), as Procwire children require.
func encode(cd codec.Codec, v any) (vec *codec.Vec, pooled bool, err error) {
	if vec, ok := v.(*codec.Vec); ok {
		return vec, false, nil
	}
	vec = getVec()
	if err := codec.AppendVec(cd, vec, v); err != nil {
		putVec(vec)
		return nil, false, fmt.Errorf("rpc: encode request: %w", err)
	}
	return vec, true, nil
}

// Call sends a request for a result or ack method and decodes the answer
// into out (a pointer, or nil to discard it). in is encoded with the
// method's request codec, unless it is a *codec.Vec, which is sent as the
// payload as it is. A *[]byte out with enough capacity receives a large
// []byte result without allocating: the bytes are read from the
// connection straight into it. It returns a *RemoteError if
// the handler failed, ctx.Err() if ctx ended first — after telling the peer
// with an abort frame — and an error wrapping ErrClosed if the connection
// ended. An ack without data leaves out untouched.
func (c *Conn) Call(ctx context.Context, m Method, in, out any) error {
	if m.Kind == KindStream || m.Kind == KindNone {
		return fmt.Errorf("rpc: Call on a %s method %d; use OpenStream or Send", m.Kind, m.ID)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.opts.Observer != nil {
		return c.callObserved(ctx, m, in, out)
	}
	req, _ := m.codecs(c)
	vec, pooled, err := encode(req, in)
	if err != nil {
		return err
	}
	return c.call(ctx, m, vec, pooled, out, nil, nil)
}

// call sends the encoded request vec (released after sending when pooled)
// and waits for the answer; o, when not nil, is the call's observation and
// got receives the answer's size.
func (c *Conn) call(ctx context.Context, m Method, vec *codec.Vec, pooled bool, out any, o *observed, got *int) error {
	_, resp := m.codecs(c)
	cl := c.getCall(m.Kind, resp, out)
	id, err := c.register(cl)
	if err == nil {
		if o != nil {
			err = c.sendRequest(m.ID, id, vec, o)
		} else {
			err = c.sendVec(m.ID, 0, id, vec, false)
		}
		if err != nil && !c.unregister(id, cl) {
			c.turn.WaitDone(&cl.w) // the connection failed it concurrently
		}
	}
	if pooled {
		putVec(vec)
	}
	if err != nil {
		c.putCall(cl)
		return err
	}
	if m.Timeout > 0 {
		c.watchTimeout(ctx, cl, m.Timeout)
	}
	if !c.turn.Wait(ctx, &cl.w) {
		gaveUp := ctx.Err()
		if cl.expired.Load() || gaveUp == nil {
			gaveUp = context.DeadlineExceeded
		}
		if c.giveUp(ctx, id, cl) {
			c.abort(id)
			c.putCall(cl)
			return gaveUp
		}
		c.turn.WaitDone(&cl.w) // the answer is being delivered right now
	}
	err = cl.err
	if got != nil {
		*got = cl.n
	}
	events, base := cl.events, cl.base
	c.putCall(cl)
	if events > base && events > c.ev.done.Load() {
		c.awaitEvents(events, base)
	}
	return err
}

func (c *Conn) getCall(kind Kind, resp codec.Codec, out any) *call {
	cl := callPool.Get().(*call)
	cl.kind, cl.resp, cl.out, cl.err, cl.turn = kind, resp, out, nil, c.turn
	cl.w.Reset()
	cl.deadline, cl.events, cl.base = 0, 0, c.ev.started.Load()
	cl.expired.Store(false)
	return cl
}

func (c *Conn) putCall(cl *call) {
	cl.out, cl.resp, cl.err, cl.stream, cl.turn = nil, nil, nil, nil, nil
	callPool.Put(cl)
}

// abort tells the peer to stop working on id, without making the caller wait
// for a transport that may be full.
func (c *Conn) abort(id uint32) {
	select {
	case <-c.done:
		return
	default:
	}
	c.wg.Go(func() { c.write(wire.MethodAbort, 0, id, nil) })
}

// Send sends a fire-and-forget request (request id 0): it returns once the
// frame is written, and nothing comes back. A child uses Send to emit events.
func (c *Conn) Send(ctx context.Context, m Method, in any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := c.Err(); err != nil {
		return err
	}
	if c.draining.Load() {
		return errShutdown
	}
	if c.opts.Observer != nil {
		return c.sendObserved(ctx, m, in)
	}
	req, _ := m.codecs(c)
	vec, pooled, err := encode(req, in)
	if err != nil {
		return err
	}
	err = c.sendVec(m.ID, 0, 0, vec, false)
	if pooled {
		putVec(vec)
	}
	return err
}

// routeResponse delivers a response or stream frame to its call, following
// the Procwire parent's rules (§6.10, §6.13).
func (c *Conn) routeResponse(f wire.Frame, background bool) readturn.Status {
	if cl := c.claimed; cl != nil && f.Owned {
		c.claimed = nil // its payload (or its bytes) was read into the caller's buffer
		*cl.out.(*[]byte) = f.Payload
		cl.n = len(f.Payload)
		cl.events = c.ev.read
		cl.finish(nil)
		return readturn.Continue
	}
	c.mu.Lock()
	cl := c.pending[f.ID]
	if cl == nil {
		if len(c.late) > 0 && c.lateAnswer(f.ID) {
			c.mu.Unlock()
			return readturn.Continue
		}
		c.mu.Unlock()
		c.log.Debug("rpc: dropped a frame for no pending call", "id", f.ID, "flags", f.Flags)
		return readturn.Continue
	}
	isStream, isErr := f.Flags.Has(wire.FlagStream), f.Flags.Has(wire.FlagError)
	if cl.stream != nil {
		if !isStream && !isErr { // a result or ack for a stream: ignored
			c.mu.Unlock()
			return readturn.Continue
		}
		if isStream && !isErr && !f.Flags.Has(wire.FlagStreamEnd) {
			c.mu.Unlock()
			return cl.stream.deliver(f, background)
		}
		delete(c.pending, f.ID)
		c.mu.Unlock()
		if isErr {
			cl.stream.finish(c.remoteError(f))
		} else {
			cl.stream.finish(nil)
		}
		return readturn.Continue
	}
	if isStream || (cl.kind == KindResult && f.Flags.Has(wire.FlagAck) && !isErr) {
		c.mu.Unlock() // a stream frame or an ack for a result call: ignored
		return readturn.Continue
	}
	delete(c.pending, f.ID)
	c.mu.Unlock()
	cl.n = len(f.Payload)
	cl.events = c.ev.read
	switch {
	case isErr:
		cl.finish(c.remoteError(f))
	case len(f.Payload) == 0 && f.Flags.Has(wire.FlagAck):
		cl.finish(nil) // an ack without data
	case cl.out == nil:
		cl.finish(nil)
	default:
		if err := unmarshal(cl.resp, f.Payload, f.Owned, cl.out); err != nil {
			cl.finish(fmt.Errorf("rpc: decode response of method %d: %w", f.Method, err))
		} else {
			cl.finish(nil)
		}
	}
	return readturn.Continue
}

// responseBuffer is the frame reader's destination hook: a large result
// for a call whose out is a *[]byte with room for it is read straight into
// that buffer — raw bytes as they are, and the bytes of a msgpack binary
// value without its header. The call is claimed first, so the caller cannot
// give up on it (and reuse the buffer) while the reader writes into it.
func (c *Conn) responseBuffer(h wire.Header, head []byte) (skip int, into []byte) {
	if !h.Flags.Has(wire.FlagResponse) && h.Method < wire.MethodAuth {
		return 0, c.requestBuffer(h)
	}
	if h.ID == 0 || !h.Flags.Has(wire.FlagResponse) || h.Flags&(wire.FlagError|wire.FlagStream) != 0 {
		return 0, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cl := c.pending[h.ID]
	if cl == nil || cl.stream != nil || (cl.kind == KindResult && h.Flags.Has(wire.FlagAck)) {
		return 0, nil
	}
	p, ok := cl.out.(*[]byte)
	if !ok {
		return 0, nil
	}
	n := int(h.Len)
	switch cl.resp {
	case codec.Raw:
	case codec.Msgpack, codec.MsgpackGo:
		hdr, l, ok := codec.MsgpackBytesHeader(head)
		if !ok || uint64(hdr)+l != uint64(h.Len) {
			return 0, nil
		}
		skip, n = hdr, int(l)
	default:
		return 0, nil
	}
	if cap(*p) < n {
		return 0, nil
	}
	delete(c.pending, h.ID)
	c.claimed = cl
	return skip, (*p)[:n]
}

// requestBuffer lends a reused buffer for a large request to a raw
// Payload handler (see Payload); the request returns it after its reply.
func (c *Conn) requestBuffer(h wire.Header) []byte {
	hd := c.opts.Handlers.lookup(h.Method)
	if hd == nil || !hd.payload || hd.req != codec.Raw {
		return nil
	}
	b, ok := c.large.get(int(h.Len))
	if !ok {
		return nil // the reader allocates; the buffer is pooled after the reply
	}
	c.lent = b
	return b
}

// remoteError decodes an error frame's payload.
func (c *Conn) remoteError(f wire.Frame) error {
	err := decodeError(f.Payload)
	var re *RemoteError
	if errors.As(err, &re) && re.Code == "" && re.Message == fmt.Sprintf("Unknown method ID: %d", f.Method) {
		re.Code = codeUnknownMethod // the reference child's fixed text (§6.7)
	}
	return err
}
