package rpc

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/procxy/procxy/internal/lane"
	"github.com/procxy/procxy/internal/readturn"
	"github.com/procxy/procxy/observe"
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
	// Logger receives what cannot be returned to a caller: handler errors
	// on fire-and-forget calls and a refused shared-memory lane at Warn,
	// dropped frames and other details of normal operation at Debug. nil
	// means slog.Default(), as for procxy's and host's Logger.
	Logger *slog.Logger

	// SharedMemory turns on the shared-memory lane between two procxy
	// peers on one host: payloads of at least SharedMemoryMin bytes travel
	// through memory both processes map, and only a 16-byte reference goes
	// through the connection (docs/PROTOCOL.md). It needs Linux and a Unix
	// socket (a *net.UnixConn, such as one end of a socketpair) on both
	// ends; elsewhere, or if the peer does not agree, every payload goes
	// through the socket as usual. Turn it on at both ends, and at a parent
	// only when the child is a procxy peer: the parent's offer is its first
	// frame, which a Procwire (Node.js) child would not understand. A child
	// with the lane on sends nothing of it unless its parent offers.
	SharedMemory bool
	// SharedMemoryMin is the smallest payload sent through the lane; zero
	// means 256 KiB. Smaller payloads are cheaper through the socket.
	SharedMemoryMin int
	// SharedMemorySize is the size of each of the lane's two regions (one
	// per direction), which the parent creates; zero means 256 MiB. Memory
	// is used only as payloads fill it; a payload larger than a region, or
	// that finds it full, goes through the socket.
	SharedMemorySize int

	// Observer sees every call made and served on the Conn (see package
	// observe); nil means none, at no cost.
	Observer observe.Observer
	// Service names what the peer serves in observations: an object's
	// type key, a module's name. Empty leaves it empty.
	Service string
	// Metadata says that the peer is a procxy peer that takes request
	// metadata (flag 0x80, docs/PROTOCOL.md): the trace context an Observer
	// puts in a call's Carrier travels with its request, and the peer's
	// Observer finds it in its own. Set it at both ends, and never towards
	// a Procwire (Node.js) peer, which closes the connection on the flag.
	Metadata bool
}

// Conn is one multiplexed Procwire peer over a byte stream. Both ends can
// call and serve at the same time: calls made with [Conn.Call],
// [Conn.Send] and [OpenStream] are matched to responses by request id, and
// incoming requests run their handlers concurrently.
//
// A Conn is safe for concurrent use. It has no dedicated reader goroutine:
// a caller waiting for its answer reads the connection itself while nobody
// else does (so a sequential call is one write and one read, with no
// goroutine handoff), and a background reader takes over whenever no caller
// reads — always on the child's side, which serves requests. A short request
// handler runs on the goroutine that read the request; one that blocks or
// runs long is moved off the reading path (see internal/readturn), and
// handlers seen to run long are served on up to 8 reused worker goroutines.
// One more goroutine delivers events in order. All of them have returned
// when Close returns.
type Conn struct {
	rwc    io.ReadWriteCloser
	w      *wire.Writer
	r      *wire.Reader
	opts   Options
	codec  codec.Codec
	dir    wire.Flags // FlagToParent for a child, 0 for a parent
	log    *slog.Logger
	sem    chan struct{} // one token per running handler
	work   chan *request // unbuffered: hands a request to an idle worker
	idlers atomic.Int32  // workers waiting on work
	events chan *request // in-order dispatch of id-0 frames from a child
	ev     eventOrder    // answers wait for the events read before them
	// flushReq wakes the flusher goroutine to write queued frames (see
	// flushSoon).
	flushReq chan struct{}

	ids  *IDCounter
	turn *readturn.Arbiter
	tmo  timeouts

	large   largeBufs                 // reused buffers for large raw requests
	lane    atomic.Pointer[lane.Lane] // the shared-memory lane, once agreed
	offered atomic.Pointer[lane.Lane] // a parent's lane offered and not yet answered
	fds     *fdReader                 // a child's reader while an offer may come

	// The fields below are owned by the goroutine holding the read turn.

	// deadline interrupts a reader blocked in Read (nil: the transport has
	// no read deadline, so callers with a cancellable context never read).
	deadline interface{ SetReadDeadline(time.Time) error }
	// needAuth: a child with a token has not seen the auth frame yet.
	needAuth bool
	// held is a frame a waiting caller read but could not dispatch without
	// blocking; the background reader dispatches it first.
	held func() readturn.Status
	// claimed is a call whose large raw response is being read straight into
	// the caller's buffer; it is no longer in pending.
	claimed *call
	// lent is a reused buffer a large request is being read into.
	lent []byte

	mu       sync.Mutex
	pending  map[uint32]*call    // outgoing calls and streams; guarded by mu
	serving  map[uint32]*request // incoming calls that can be aborted; guarded by mu
	anon     map[*request]bool   // running fire-and-forget requests and events; guarded by mu
	late     map[uint32]*Late    // calls that gave up, awaiting their answer (late.go); guarded by mu
	closeErr error               // set once when the connection ends; guarded by mu

	done      chan struct{} // closed when the connection ends
	closeOnce sync.Once
	wg        sync.WaitGroup // background readers, workers, event dispatcher, abort writers

	// draining is set by Shutdown: new calls fail and requests with an id
	// are refused (shutdown.go).
	draining atomic.Bool
	// answering counts handlers between leaving serving/anon and having
	// sent their reply, so that Shutdown does not close under a reply.
	answering atomic.Int32
}

// NewConn starts serving rwc and returns the connection. It takes ownership
// of rwc: Close closes it, and so does a protocol violation or read error.
func NewConn(rwc io.ReadWriteCloser, opts Options) *Conn {
	c := &Conn{
		rwc:     rwc,
		w:       wire.NewWriter(rwc),
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
		c.log = slog.Default()
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
	c.work = make(chan *request)
	c.events = make(chan *request, 64)
	if d, ok := rwc.(interface{ SetReadDeadline(time.Time) error }); ok && d.SetReadDeadline(time.Time{}) == nil {
		c.deadline = d
	}
	cfg := readturn.Config{Step: c.step, Go: c.wg.Go}
	if c.deadline != nil {
		cfg.Interrupt = c.interrupt
	}
	c.turn = readturn.New(cfg)
	c.needAuth = opts.Role == RoleChild && opts.Token != nil
	if opts.Role == RoleParent && opts.Token != nil {
		// The auth frame must be the first frame on the connection.
		if err := c.w.WriteFrame(wire.Header{Method: wire.MethodAuth}, opts.Token); err != nil {
			c.fail(fmt.Errorf("%w: %w", ErrAuthWrite, err))
		}
	}
	c.r = wire.NewReader(c.setupLane(rwc), opts.MaxPayload)
	if opts.SharedMemory {
		c.r.Allow(wire.FlagLane)
	}
	if opts.Metadata {
		c.r.Allow(wire.FlagMeta)
	}
	c.r.SetDestAfter(c.responseBuffer)
	c.flushReq = make(chan struct{}, 1)
	c.wg.Go(c.dispatchEvents)
	c.wg.Go(c.flusher)
	if opts.Role == RoleChild {
		c.turn.Need() // a child serves: somebody reads at all times
	} else {
		c.turn.Start() // read until the first answer, then let callers read
	}
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
		c.late = nil
		c.mu.Unlock()
		close(c.done)
		c.rwc.Close()
		c.turn.Stop()
		c.tmo.stop()
		c.closeLane()
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

// step reads and dispatches one frame for the goroutine holding the read
// turn (readturn.Config.Step). background says whether that goroutine is a
// background reader, which may block and serve requests inline.
func (c *Conn) step(background bool) readturn.Status {
	if h := c.held; h != nil {
		if !background {
			return readturn.Yield
		}
		c.held = nil
		return h()
	}
	if !c.r.HasFrame() {
		c.flushSoon() // replies queued while input was buffered go out before we block
	}
	f, err := c.r.ReadFrame()
	if err != nil {
		if c.deadline != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			// A caller giving up interrupted the read; nothing was lost.
			c.deadline.SetReadDeadline(time.Time{})
			return readturn.Interrupted
		}
		c.fail(err)
		if cl := c.claimed; cl != nil {
			c.claimed = nil
			cl.finish(c.Err())
		}
		c.lent = nil
		return readturn.Stopped
	}
	if c.needAuth {
		if err := c.checkAuth(f); err != nil {
			c.fail(err)
			return readturn.Stopped
		}
		c.needAuth = false
		return readturn.Continue
	}
	if f.Flags&wire.FlagLane != 0 {
		return c.laneFrame(f, background)
	}
	if c.fds != nil && !c.fds.plain && f.Method != wire.MethodAuth {
		c.fds.closeFiles() // no offer came first: no lane, and no more recvmsg
	}
	return c.route(f, background)
}

// flushSoon gets queued frames (replies queued while more requests were
// buffered, lane releases) written without the reading goroutine writing
// them: a reader blocked on a full socket while its peer, blocked the same
// way, is not reading either would never wake up. The flusher goroutine
// writes them; most of the time there is nothing queued and nothing to wake.
func (c *Conn) flushSoon() {
	if !c.w.Queued() {
		return
	}
	select {
	case c.flushReq <- struct{}{}:
	default: // already asked
	}
}

func (c *Conn) flusher() {
	for {
		select {
		case <-c.flushReq:
			c.w.Flush()
		case <-c.done:
			return
		}
	}
}

// interrupt makes a Read blocked in step return at once
// (readturn.Config.Interrupt).
func (c *Conn) interrupt() { c.deadline.SetReadDeadline(aLongTimeAgo) }

var aLongTimeAgo = time.Unix(1, 0)

// maxIdle bounds the worker goroutines kept waiting for requests.
const maxIdle = 8

// checkAuth checks the first frame a child with a token receives.
func (c *Conn) checkAuth(f wire.Frame) error {
	if f.Method != wire.MethodAuth {
		return fmt.Errorf("%w: first frame has method id %#04x, want the auth frame", ErrAuth, f.Method)
	}
	if subtle.ConstantTimeCompare(f.Payload, c.opts.Token) != 1 {
		return fmt.Errorf("%w: wrong token", ErrAuth)
	}
	return nil
}

// route handles one frame (Procwire §6.10, §6.11).
func (c *Conn) route(f wire.Frame, background bool) readturn.Status {
	switch {
	case f.Flags&wire.FlagMeta != 0 && (f.Flags.Has(wire.FlagResponse) || f.Method >= wire.MethodAuth):
		c.fail(fmt.Errorf("%w: on a frame that is not a request (method %#04x, flags %v)", ErrMetadata, f.Method, f.Flags))
		return readturn.Stopped
	case f.Method == wire.MethodAuth && !f.Flags.Has(wire.FlagResponse):
		// Stray or late auth frames are ignored, never answered (§6.9).
	case f.Method == wire.MethodAbort && !f.Flags.Has(wire.FlagResponse):
		c.abortServing(f.ID)
	case f.ID != 0 && f.Flags&(wire.FlagStream|wire.FlagResponse) != 0:
		return c.routeResponse(f, background)
	case f.Flags.Has(wire.FlagResponse):
		c.log.Debug("rpc: dropped a response without request id", "method", f.Method, "flags", f.Flags)
	case c.draining.Load() && f.ID != 0:
		c.refuse(f)
	default:
		return c.routeRequest(f, background)
	}
	return readturn.Continue
}

// write sends one frame with this end's direction bit.
func (c *Conn) write(method uint16, flags wire.Flags, id uint32, payload []byte) error {
	return c.send(method, flags, id, payload, false)
}

// send writes one frame, or with queue set adds it to the next write (the
// caller has more input buffered and flushes before it blocks).
func (c *Conn) send(method uint16, flags wire.Flags, id uint32, payload []byte, queue bool) error {
	h := wire.Header{Method: method, Flags: flags | c.dir, ID: id}
	if len(payload) > maxQueued && c.lane.Load() != nil {
		if ok, err := c.sendLane(h, [][]byte{payload}, len(payload)); ok {
			if err != nil {
				c.fail(err)
				return c.Err()
			}
			return nil
		}
	}
	var err error
	if queue && len(payload) <= maxQueued && c.w.Buffered() < maxQueuedBytes {
		err = c.w.Queue(h, payload)
	} else {
		err = c.w.WriteFrame(h, payload)
	}
	if err != nil {
		c.fail(err)
		return c.Err()
	}
	return nil
}

// sendVec is send for an encoded Vec.
func (c *Conn) sendVec(method uint16, flags wire.Flags, id uint32, vec *codec.Vec, queue bool) error {
	parts := vec.Parts()
	if len(parts) <= 1 {
		var p []byte
		if len(parts) == 1 {
			p = parts[0]
		}
		return c.send(method, flags, id, p, queue)
	}
	h := wire.Header{Method: method, Flags: flags | c.dir, ID: id}
	if c.lane.Load() != nil {
		if ok, err := c.sendLane(h, parts, vec.Len()); ok {
			if err != nil {
				c.fail(err)
				return c.Err()
			}
			return nil
		}
	}
	if err := c.w.WriteFrameVec(h, parts); err != nil {
		c.fail(err)
		return c.Err()
	}
	return nil
}

// maxQueued is the largest payload a reply is queued with; a larger one is
// written at once, from the caller's slice. Past maxQueuedBytes waiting,
// replies are written at once too.
const (
	maxQueued      = 16 << 10
	maxQueuedBytes = 256 << 10
)

// vecPool holds Vecs for encoding payloads; vecs whose buffer grew past
// maxPooled are dropped.
var vecPool = sync.Pool{New: func() any { return new(codec.Vec) }}

func getVec() *codec.Vec { return vecPool.Get().(*codec.Vec) }

func putVec(v *codec.Vec) {
	if v == nil || v.Cap() > maxPooled {
		return
	}
	v.Reset()
	vecPool.Put(v)
}

// largeBufs keeps the buffers large raw requests were read into (see
// Payload), for the next ones. A sync.Pool would not do: it is emptied at
// every garbage collection, and megabyte requests make one every few calls.
// It keeps at most maxLargeBufs buffers of at most maxLargeBuf bytes.
type largeBufs struct {
	mu   sync.Mutex
	free [][]byte // guarded by mu
}

const (
	largeMin     = 128 << 10
	maxLargeBufs = 4
	maxLargeBuf  = 256 << 20
)

// get returns a kept buffer of n bytes, the smallest that fits, if there
// is one. It never allocates: a length from the wire is not trusted with
// memory until the payload arrives (the frame reader grows its own buffer
// as it does).
func (l *largeBufs) get(n int) ([]byte, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	best := -1
	for i, b := range l.free {
		if cap(b) >= n && (best < 0 || cap(b) < cap(l.free[best])) {
			best = i
		}
	}
	if best < 0 {
		return nil, false
	}
	b := l.free[best]
	l.free = slices.Delete(l.free, best, best+1)
	return b[:n], true
}

// put keeps b for a later request, dropping the smallest kept buffer when
// there are too many.
func (l *largeBufs) put(b []byte) {
	if cap(b) < largeMin || cap(b) > maxLargeBuf {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.free) == maxLargeBufs {
		small := 0
		for i, f := range l.free {
			if cap(f) < cap(l.free[small]) {
				small = i
			}
		}
		if cap(l.free[small]) >= cap(b) {
			return
		}
		l.free = slices.Delete(l.free, small, small+1)
	}
	l.free = append(l.free, b[:cap(b)])
}

// bufPool holds buffers for error payloads and for copies of small
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
