package rpc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/rpc/wire"
)

// Role says which end of a Procwire connection a Conn plays. It decides the
// direction bit on frames the Conn sends and the auth handshake.
type Role uint8

const (
	// RoleParent is the end that spawned the other (Procwire's parent).
	RoleParent Role = iota
	// RoleChild is the worker end: every frame it sends carries FlagToParent.
	RoleChild
)

// Options configures a Conn. The zero value is valid; each zero field means its default.
type Options struct {
	Role Role
	// Handlers serves incoming requests and events; nil serves none (every
	// request is answered with an unknown-method error).
	Handlers *Mux
	// Codec encodes payloads of methods and handlers that name none; nil means msgpack.
	Codec codec.Codec
	// MaxPayload is the largest payload accepted from the peer; zero means
	// wire.DefaultMaxPayload (1 GiB), and it is clamped to 2 GiB − 1.
	MaxPayload int
	// StreamBuffer is how many chunks of one incoming stream are held before
	// the connection stops reading (Procwire's parent stops at 256, which is
	// also the default here). Reading resumes as the consumer catches up.
	StreamBuffer int
	// MaxHandlers bounds the request handlers running at once; when it is
	// reached the connection stops reading until one returns. Zero means 65536.
	MaxHandlers int
	// Token enables Procwire authentication: a parent sends it in an auth
	// frame before anything else; a child requires that frame first and
	// closes the connection (ErrAuth) on anything else or a wrong token.
	Token []byte
	// IDs allocates the request ids of calls; nil gives the Conn its own
	// counter. A Procwire parent shares one between the connections to the
	// successive children of a module, so ids survive restarts.
	IDs *IDCounter
	// Logger receives what cannot be returned to a caller (dropped frames,
	// handler errors on fire-and-forget calls). nil discards.
	Logger *slog.Logger
}

// Conn is one multiplexed Procwire peer over a byte stream. Both ends can
// call and serve at the same time: calls made with [Conn.Call],
// [Conn.Send] and [OpenStream] are matched to responses by request id, and
// incoming requests run their handlers concurrently.
//
// A Conn is safe for concurrent use. Its goroutines: one reads frames at a
// time; a request is served by the goroutine that read it, which first hands
// reading to an idle goroutine or a new one, and afterwards waits as one of
// at most 8 idle ones; one more delivers events in order. All of them have
// returned when Close returns.
type Conn struct {
	rwc    io.ReadWriteCloser
	w      *wire.Writer
	r      *wire.Reader
	opts   Options
	codec  codec.Codec
	dir    wire.Flags // FlagToParent for a child, 0 for a parent
	log    *slog.Logger
	sem    chan struct{} // one token per running handler
	wake   chan struct{} // unbuffered: hands reading to an idle goroutine
	idlers atomic.Int32  // goroutines waiting on wake
	events chan *request // in-order dispatch of id-0 frames from a child

	ids *IDCounter

	// claimed is a call whose large raw response is being read straight into
	// the caller's buffer; it is no longer in pending. Owned by the reading
	// goroutine.
	claimed *call

	mu       sync.Mutex
	pending  map[uint32]*call    // outgoing calls and streams; guarded by mu
	serving  map[uint32]*request // incoming calls that can be aborted; guarded by mu
	anon     map[*request]bool   // running fire-and-forget requests and events; guarded by mu
	closeErr error               // set once when the connection ends; guarded by mu

	done      chan struct{} // closed when the connection ends
	closeOnce sync.Once
	wg        sync.WaitGroup // reader, event dispatcher, handlers, abort writers
}

// NewConn starts serving rwc and returns the connection. It takes ownership
// of rwc: Close closes it, and so does a protocol violation or read error.
func NewConn(rwc io.ReadWriteCloser, opts Options) *Conn {
	c := &Conn{
		rwc:     rwc,
		w:       wire.NewWriter(rwc),
		r:       wire.NewReader(rwc, opts.MaxPayload),
		opts:    opts,
		codec:   opts.Codec,
		log:     opts.Logger,
		pending: make(map[uint32]*call),
		serving: make(map[uint32]*request),
		anon:    make(map[*request]bool),
		done:    make(chan struct{}),
	}
	if c.codec == nil {
		c.codec = codec.Msgpack
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if opts.Role == RoleChild {
		c.dir = wire.FlagToParent
	}
	if c.opts.StreamBuffer <= 0 {
		c.opts.StreamBuffer = 256
	}
	if c.opts.MaxHandlers <= 0 {
		c.opts.MaxHandlers = 1 << 16
	}
	c.ids = opts.IDs
	if c.ids == nil {
		c.ids = new(IDCounter)
	}
	c.sem = make(chan struct{}, c.opts.MaxHandlers)
	c.wake = make(chan struct{})
	c.events = make(chan *request, 64)
	if opts.Role == RoleParent && opts.Token != nil {
		// The auth frame must be the first frame on the connection.
		if err := c.w.WriteFrame(wire.Header{Method: wire.MethodAuth}, opts.Token); err != nil {
			c.fail(fmt.Errorf("%w: %w", ErrAuthWrite, err))
		}
	}
	c.r.SetDest(c.responseBuffer)
	c.wg.Go(c.readLoop)
	c.wg.Go(c.dispatchEvents)
	return c
}

// Done returns a channel that is closed when the connection has ended.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns why the connection ended, or nil while it is open. The error
// wraps ErrClosed and, when the connection died, the cause.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// Close ends the connection: pending calls and open streams fail with
// ErrClosed, running handlers see their context cancelled, and the
// transport is closed. Close waits for every goroutine of the Conn,
// including running handlers, so handlers must honour their context.
// It is idempotent and returns the same result each time.
func (c *Conn) Close() error {
	c.fail(nil)
	c.wg.Wait()
	return nil
}

// CloseWithError ends the connection like Close, but pending calls and open
// streams fail with an error wrapping both ErrClosed and cause. The owner of
// the peer uses it when it learns first why the peer is gone — for example
// the exit status of a child process, which arrives even while the
// connection is not reading because a stream consumer is behind.
func (c *Conn) CloseWithError(cause error) error {
	c.fail(cause)
	c.wg.Wait()
	return nil
}

// fail ends the connection once; cause nil means a local Close.
func (c *Conn) fail(cause error) {
	c.closeOnce.Do(func() {
		err := ErrClosed
		if cause != nil && !errors.Is(cause, ErrClosed) {
			err = fmt.Errorf("%w: %w", ErrClosed, describe(cause))
		}
		c.mu.Lock()
		c.closeErr = err
		pending, serving, anon := c.pending, c.serving, c.anon
		c.pending, c.serving, c.anon = map[uint32]*call{}, map[uint32]*request{}, map[*request]bool{}
		c.mu.Unlock()
		close(c.done)
		c.rwc.Close()
		for _, cl := range pending {
			cl.finish(err)
		}
		for _, r := range serving {
			r.cancel(err)
		}
		for r := range anon {
			r.cancel(err)
		}
		if cause != nil {
			c.log.Debug("rpc: connection ended", "err", err)
		}
	})
}

// describe names the common ways a connection ends.
func describe(err error) error {
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("peer closed the connection: %w", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("peer closed the connection in the middle of a frame: %w", err)
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return fmt.Errorf("connection reset by peer: %w", err)
	case errors.Is(err, net.ErrClosed):
		return err
	}
	var he *wire.HeaderError
	if errors.As(err, &he) {
		return fmt.Errorf("protocol violation: %w", err)
	}
	return err
}

func (c *Conn) readLoop() {
	if c.opts.Role == RoleChild && c.opts.Token != nil {
		if err := c.checkAuth(); err != nil {
			c.fail(err)
			return
		}
	}
	c.readFrames()
}

// readFrames reads and routes frames until the connection ends. The
// goroutine that reads a request serves it itself and hands reading over to
// another goroutine (leader/follower): the reply does not wait for a handler
// goroutine to be scheduled. After serving it parks as an idle follower, so
// that sequential calls reuse goroutines whose stacks have already grown.
func (c *Conn) readFrames() {
	for {
		r := c.readUntilRequest()
		if r == nil {
			return
		}
		select {
		case c.wake <- struct{}{}: // an idle goroutine takes over reading
		default:
			c.wg.Go(c.readFrames)
		}
		c.serve(r)
		<-c.sem
		if !c.idle() {
			return
		}
	}
}

// readUntilRequest routes frames until one is a request to serve; it
// returns nil when the connection has ended.
func (c *Conn) readUntilRequest() *request {
	for {
		f, err := c.r.ReadFrame()
		if err != nil {
			c.fail(err)
			if cl := c.claimed; cl != nil {
				c.claimed = nil
				cl.finish(c.Err())
			}
			return nil
		}
		if r := c.route(f); r != nil {
			return r
		}
	}
}

// maxIdle bounds the goroutines kept waiting to read next.
const maxIdle = 8

// idle waits to be woken as the next reader; it reports false when the
// goroutine should exit instead (too many idle, or the connection ended).
func (c *Conn) idle() bool {
	if c.idlers.Add(1) > maxIdle {
		c.idlers.Add(-1)
		return false
	}
	defer c.idlers.Add(-1)
	select {
	case <-c.wake:
		return true
	case <-c.done:
		return false
	}
}

func (c *Conn) checkAuth() error {
	f, err := c.r.ReadFrame()
	if err != nil {
		return err
	}
	if f.Method != wire.MethodAuth {
		return fmt.Errorf("%w: first frame has method id %#04x, want the auth frame", ErrAuth, f.Method)
	}
	if subtle.ConstantTimeCompare(f.Payload, c.opts.Token) != 1 {
		return fmt.Errorf("%w: wrong token", ErrAuth)
	}
	return nil
}

// route handles one frame on the reader goroutine (Procwire §6.10, §6.11).
// It returns a request for the caller to serve, holding a handler token.
func (c *Conn) route(f wire.Frame) *request {
	switch {
	case f.Method == wire.MethodAuth && !f.Flags.Has(wire.FlagResponse):
		// Stray or late auth frames are ignored, never answered (§6.9).
	case f.Method == wire.MethodAbort && !f.Flags.Has(wire.FlagResponse):
		c.abortServing(f.ID)
	case f.ID != 0 && f.Flags&(wire.FlagStream|wire.FlagResponse) != 0:
		c.routeResponse(f)
	case f.Flags.Has(wire.FlagResponse):
		c.log.Debug("rpc: dropped a response without request id", "method", f.Method, "flags", f.Flags)
	default:
		return c.routeRequest(f)
	}
	return nil
}

// write sends one frame with this end's direction bit.
func (c *Conn) write(method uint16, flags wire.Flags, id uint32, payload []byte) error {
	if err := c.w.WriteFrame(wire.Header{Method: method, Flags: flags | c.dir, ID: id}, payload); err != nil {
		c.fail(err)
		return c.Err()
	}
	return nil
}

// bufPool holds payload buffers for encoding and for copies of small
// incoming payloads. Buffers that grew past maxPooled are dropped.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

const maxPooled = 64 << 10

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if b == nil || cap(*b) > maxPooled {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// IDCounter hands out request ids: 1, 2, … up to 0xFFFFFFFF, then 1 again
// (0 is skipped). The zero value starts at 1. It is safe for concurrent use.
type IDCounter struct{ n atomic.Uint32 }

// SetNext makes id the next id handed out (0 means 1).
func (c *IDCounter) SetNext(id uint32) { c.n.Store(id - 1) }

func (c *IDCounter) next() uint32 {
	for {
		if id := c.n.Add(1); id != 0 {
			return id
		}
	}
}

// closedErr is the error for an operation on an ended connection.
func (c *Conn) closedErr() error {
	if err := c.Err(); err != nil {
		return err
	}
	return ErrClosed
}

var _ context.Context = (*request)(nil)
