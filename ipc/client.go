package ipc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procxy/procxy/internal/backoff"
	"github.com/procxy/procxy/internal/readturn"
	"github.com/procxy/procxy/rpc/wire"
)

// Dial connects to the ipc server at addr (see the address forms in the
// package documentation) and returns the connection. It fails if the
// server cannot be reached within ctx and ConnectTimeout, unless
// [RetryOnConnect] is given. Once connected, the connection reconnects by
// itself with backoff whenever it breaks (see [Reconnect]).
func Dial(ctx context.Context, addr string, opts ...Option) (*Conn, error) {
	o := NewOptions(opts...)
	a := address{network: "custom", addr: addr}
	if o.Dial == nil {
		var err error
		if a, err = parseAddr(addr); err != nil {
			return nil, err
		}
	}
	return newConn(ctx, newSockTransport(a, o), o)
}

// maxOutbound is how many bytes of frames may wait to be written while
// connected before publishers block.
const maxOutbound = 1 << 20

// sockTransport is the Transport of a client of an ipc server.
type sockTransport struct {
	addr address
	o    Options
	sink Sink

	out       atomic.Pointer[outbox] // the live connection's, or the reconnect buffer
	connected atomic.Bool
	lastRecv  atomic.Int64          // UnixNano of the last frame received
	shutdown  atomic.Pointer[error] // the server said it is shutting down

	cur atomic.Pointer[link] // the live connection; nil while disconnected

	mu     sync.Mutex
	nc     net.Conn              // nil while disconnected; guarded by mu
	gen    uint64                // connection generation; guarded by mu
	link   *link                 // the live connection; guarded by mu
	needs  int                   // flows and other waits that need a background reader; guarded by mu
	subs   map[uint32]subSpec    // what to subscribe again after a reconnect; guarded by mu
	info   serverInfo            // guarded by mu
	acks   map[uint32]chan error // PublishSync waiters; guarded by mu
	pings  map[uint32]chan error // Flush waiters; guarded by mu
	seq    uint32                // ack and ping numbers; guarded by mu
	closed bool                  // guarded by mu

	ctx    context.Context // ends at Close: stops reconnecting and heartbeats
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type subSpec struct{ subject, queue string }

func newSockTransport(a address, o Options) *sockTransport {
	t := &sockTransport{
		addr: a, o: o,
		subs:  make(map[uint32]subSpec),
		acks:  make(map[uint32]chan error),
		pings: make(map[uint32]chan error),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t
}

// Open dials the server and completes the handshake.
func (t *sockTransport) Open(ctx context.Context, s Sink) error {
	t.sink = s
	t.out.Store(t.detached(nil))
	for attempt := 1; ; attempt++ {
		err := t.connect(ctx)
		if err == nil {
			s.State(StateConnected, nil)
			if t.o.Heartbeat > 0 {
				t.wg.Go(t.heartbeat)
			}
			return nil
		}
		if !t.o.RetryOnConnect || errors.Is(err, ErrAuth) || ctx.Err() != nil {
			return fmt.Errorf("ipc: dial %s: %w", t.addr, err)
		}
		if werr := backoff.Sleep(ctx, t.o.reconnectDelay(attempt)); werr != nil {
			return fmt.Errorf("ipc: dial %s: %w (last attempt: %w)", t.addr, werr, err)
		}
	}
}

// detached returns an outbox with no connection: it holds publishes while
// disconnected, up to ReconnectBufSize bytes.
func (t *sockTransport) detached(buf []byte) *outbox {
	o := newOutbox(nil, nil)
	o.appendLocked(buf)
	return o
}

// connect dials, shakes hands and starts reading.
func (t *sockTransport) connect(ctx context.Context) error {
	if t.o.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.o.ConnectTimeout)
		defer cancel()
	}
	var nc net.Conn
	var err error
	if t.o.Dial != nil {
		nc, err = t.o.Dial(ctx)
	} else {
		nc, err = t.addr.dial(ctx, t.o.TLS)
	}
	if err != nil {
		return err
	}
	r, info, err := t.handshake(ctx, nc)
	if err != nil {
		nc.Close()
		return err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		nc.Close()
		return ErrClosed
	}
	t.gen++
	gen := t.gen
	t.nc = nc
	t.info = info
	o := newOutbox(nc, func(err error) { t.lost(gen, err) })
	// Subscriptions first, then what was published while disconnected.
	o.mu.Lock()
	for sid, s := range t.subs {
		o.addLocked(opSub, 0, sid, appendSub(nil, s.subject, s.queue))
	}
	old := t.out.Load()
	old.mu.Lock()
	o.appendLocked(old.takeLocked())
	old.closed = true
	old.cond.Broadcast()
	old.mu.Unlock()
	o.mu.Unlock()
	t.out.Store(o)
	t.connected.Store(true)
	t.lastRecv.Store(time.Now().UnixNano())
	l := t.newLink(gen, nc, r, o, time.Duration(info.Heartbeat))
	t.link = l
	t.cur.Store(l)
	t.demandLocked()
	t.mu.Unlock()
	t.wg.Go(func() { o.writer(l.stop) })
	l.turn.Start() // read until the first answer, then let requesters read
	o.flush(true)
	return nil
}

// handshake sends CONNECT and waits for INFO (or ERR).
func (t *sockTransport) handshake(ctx context.Context, nc net.Conn) (*wire.Reader, serverInfo, error) {
	var info serverInfo
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
		defer nc.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	ci := connectInfo{Version: protoVersion, Name: t.o.Name, Token: t.o.Token, NoEcho: t.o.NoEcho, Lang: "go"}
	w := wire.NewWriter(nc)
	if err := w.WriteFrame(wire.Header{Method: opConnect}, encodeInfo(&ci)); err != nil {
		return nil, info, err
	}
	f, err := readOneFrame(nc, 64<<10)
	if err != nil {
		var he *wire.HeaderError
		switch {
		case ctx.Err() != nil:
			return nil, info, ctx.Err()
		case errors.As(err, &he):
			return nil, info, fmt.Errorf("%w: answer to CONNECT: %w", ErrProtocol, err)
		}
		// Closed or reset, or a TLS alert (a client certificate refused).
		return nil, info, fmt.Errorf("the server did not answer CONNECT: %w", err)
	}
	switch f.Method {
	case opInfo:
		if err := decodeInfo(f.Payload, &info); err != nil {
			return nil, info, err
		}
	case opErr:
		var e errInfo
		if err := decodeInfo(f.Payload, &e); err != nil {
			return nil, info, err
		}
		return nil, info, e.err()
	default:
		return nil, info, fmt.Errorf("%w: %s in answer to CONNECT", ErrProtocol, opName(f.Method))
	}
	return wire.NewReader(nc, maxFrame(info.MaxPayload)), info, nil
}

// readOneFrame reads exactly one frame (header, then payload of at most
// max bytes) without reading ahead, so that a wire.Reader made afterwards
// misses nothing.
func readOneFrame(r io.Reader, max int) (wire.Frame, error) {
	var hb [wire.HeaderSize]byte
	if _, err := io.ReadFull(r, hb[:]); err != nil {
		return wire.Frame{}, err
	}
	h, _ := wire.ParseHeader(hb[:])
	if err := h.Validate(max); err != nil {
		return wire.Frame{}, err
	}
	p := make([]byte, h.Len)
	if _, err := io.ReadFull(r, p); err != nil {
		return wire.Frame{}, err
	}
	return wire.Frame{Header: h, Payload: p, Owned: true}, nil
}

// link is one connection of a sockTransport (one generation of it). It
// has no reader goroutine of its own: a goroutine waiting in Request for
// its reply reads the connection itself while nobody else does, and a
// background reader reads whenever something needs frames that no
// requester reads — a subscription, a stream, a Flush — or nobody has read
// for a watchdog period (internal/readturn). A background reader runs a
// short subscription handler inline.
type link struct {
	t     *sockTransport
	gen   uint64
	nc    net.Conn
	o     *outbox
	turn  *readturn.Arbiter
	stop  chan struct{} // closed by close: the writer goroutine ends
	once  sync.Once
	needs bool // turn.Need is in force; guarded by sockTransport.mu

	// Owned by the goroutine holding the read turn.
	r             *wire.Reader
	frames        int
	slot          inlineSlot
	interruptible bool // a read deadline can interrupt a blocked read
}

// linkIdle bounds how long a client connection goes unread while nothing
// needs it read (readturn.Config.IdlePeriod): what can come then is a
// ping, an error about an earlier publish, or the end of the connection.
// Waking up to look sooner would cost a thread wake-up per millisecond
// while requests come one after the other. A quarter of either side's
// heartbeat interval bounds it too, so pings are answered in time.
const linkIdle = 20 * time.Millisecond

// newLink returns the link of a connection whose server pings every
// serverHB (0: never).
func (t *sockTransport) newLink(gen uint64, nc net.Conn, r *wire.Reader, o *outbox, serverHB time.Duration) *link {
	l := &link{t: t, gen: gen, nc: nc, r: r, o: o, stop: make(chan struct{})}
	idle := linkIdle
	for _, hb := range []time.Duration{serverHB, t.o.Heartbeat} {
		if hb > 0 {
			idle = min(idle, max(hb/4, readturn.DefaultPeriod))
		}
	}
	cfg := readturn.Config{Step: l.step, Go: t.wg.Go, IdlePeriod: idle}
	if nc.SetReadDeadline(time.Time{}) == nil {
		l.interruptible = true
		cfg.Interrupt = l.interrupt
	}
	l.turn = readturn.New(cfg)
	return l
}

// close stops reading and writing the connection (not the socket itself).
func (l *link) close() {
	l.once.Do(func() {
		l.turn.Stop()
		close(l.stop)
	})
}

// interrupt makes a blocked read return (readturn.Config.Interrupt).
func (l *link) interrupt() { l.nc.SetReadDeadline(aLongTimeAgo) }

var aLongTimeAgo = time.Unix(1, 0)

// step reads one frame and acts on it (readturn.Config.Step). A
// background reader may run a subscription's handler inline; a requester
// never does.
func (l *link) step(background bool) readturn.Status {
	t, r := l.t, l.r
	f, err := r.ReadFrame()
	if err != nil {
		if l.interruptible && errors.Is(err, os.ErrDeadlineExceeded) {
			// A requester giving up interrupted the read; nothing was lost.
			l.nc.SetReadDeadline(time.Time{})
			return readturn.Interrupted
		}
		t.lost(l.gen, err)
		l.close()
		return readturn.Stopped
	}
	if l.frames++; l.frames&1023 == 1 || r.Buffered() == 0 {
		t.lastRecv.Store(time.Now().UnixNano()) // heartbeats need no finer clock
	}
	var slot *inlineSlot
	if background {
		slot = &l.slot
		slot.more = r.HasFrame()
	}
	if err := t.handle(f, l.o, slot); err != nil {
		t.lost(l.gen, err)
		l.close()
		return readturn.Stopped
	}
	if r.Buffered() == 0 {
		l.o.flush(false) // pongs
	}
	if l.slot.sub != nil {
		job := l.slot.take()
		token := l.turn.BeginInline()
		job.run()
		if !l.turn.EndInline(token) {
			return readturn.Lost
		}
	}
	return readturn.Continue
}

// demandLocked makes a background reader read the live connection
// whenever no requester does while something needs frames that no
// requester reads: a subscription other than the inbox, or a flow or wait
// counted in needs (caller holds mu).
func (t *sockTransport) demandLocked() {
	l := t.link
	if l == nil {
		return
	}
	n := t.needs + len(t.subs)
	if _, ok := t.subs[inboxSID]; ok {
		n--
	}
	switch {
	case n > 0 && !l.needs:
		l.needs = true
		l.turn.Need()
	case n == 0 && l.needs:
		l.needs = false
		l.turn.Unneed()
	}
}

// need adds d to what needs a background reader.
func (t *sockTransport) need(d int) {
	t.mu.Lock()
	t.needs += d
	t.demandLocked()
	t.mu.Unlock()
}

// turn returns the arbiter of the live connection, nil while disconnected.
func (t *sockTransport) turn() *readturn.Arbiter {
	if l := t.cur.Load(); l != nil {
		return l.turn
	}
	return nil
}

// startReader starts a background reader now if nobody reads: a Flush or
// PublishSync waits for an answer that no requester reads.
func (t *sockTransport) startReader() {
	if l := t.cur.Load(); l != nil {
		l.turn.Start()
	}
}

// handle acts on one frame from the server. slot, if not nil, is the
// reading goroutine's offer to run a handler inline.
func (t *sockTransport) handle(f wire.Frame, o *outbox, slot *inlineSlot) error {
	switch f.Method {
	case opMsg:
		m, err := decodeMsg(f.Payload)
		if err != nil {
			return err
		}
		if s, ok := t.sink.(sink); ok {
			s.c.deliver(f.ID, m, apiFlags(f.Flags), slot)
		} else {
			t.sink.Deliver(f.ID, m, apiFlags(f.Flags))
		}
	case opPing:
		o.mu.Lock()
		o.addLocked(opPong, 0, f.ID, nil)
		o.mu.Unlock()
	case opPong:
		t.complete(t.pings, f.ID, nil)
	case opAck:
		var err error
		if len(f.Payload) > 0 {
			var e errInfo
			if err = decodeInfo(f.Payload, &e); err == nil {
				err = e.err()
			}
		}
		t.complete(t.acks, f.ID, err)
	case opErr:
		var e errInfo
		if err := decodeInfo(f.Payload, &e); err != nil {
			return err
		}
		err := e.err()
		if e.Code == codeShutdown {
			t.shutdown.Store(&err) // the end of the connection that follows is why
		}
		t.sink.AsyncError(err)
	case opCancel:
		t.sink.Cancel(string(f.Payload))
	case opDropped:
		if len(f.Payload) != 4 {
			return fmt.Errorf("%w: DROPPED of %d bytes", ErrProtocol, len(f.Payload))
		}
		t.sink.Dropped(f.ID, int(binary.BigEndian.Uint32(f.Payload)))
	case opInfo:
		var info serverInfo
		if err := decodeInfo(f.Payload, &info); err != nil {
			return err
		}
		t.mu.Lock()
		t.info = info
		t.mu.Unlock()
	default:
		return fmt.Errorf("%w: unexpected %s from the server", ErrProtocol, opName(f.Method))
	}
	return nil
}

func (t *sockTransport) complete(m map[uint32]chan error, id uint32, err error) {
	t.mu.Lock()
	ch := m[id]
	delete(m, id)
	t.mu.Unlock()
	if ch != nil {
		ch <- err
	}
}

// lost handles the end of connection generation gen.
func (t *sockTransport) lost(gen uint64, cause error) {
	t.mu.Lock()
	if t.gen != gen || t.nc == nil || t.closed {
		t.mu.Unlock()
		return
	}
	t.nc.Close()
	t.nc = nil
	l := t.link
	t.link = nil
	t.cur.Store(nil)
	l.close()
	t.connected.Store(false)
	if why := t.shutdown.Swap(nil); why != nil && errors.Is(cause, io.EOF) {
		cause = *why
	}
	old := t.out.Load()
	old.mu.Lock()
	keep := keepPubs(old.takeLocked(), t.o.ReconnectBufSize)
	old.closed = true
	old.cond.Broadcast()
	old.mu.Unlock()
	t.out.Store(t.detached(keep))
	waiters := t.failWaitersLocked(fmt.Errorf("%w: %w", ErrConnectionLost, cause))
	t.mu.Unlock()
	for _, ch := range waiters {
		ch.c <- ch.err
	}
	loss := describeLoss(cause)
	t.sink.State(StateDisconnected, loss)
	if t.o.NoReconnect {
		t.sink.State(StateClosed, loss)
		return
	}
	t.wg.Go(t.reconnect)
}

type waiter struct {
	c   chan error
	err error
}

func (t *sockTransport) failWaitersLocked(err error) []waiter {
	var ws []waiter
	for id, ch := range t.acks {
		ws = append(ws, waiter{ch, err})
		delete(t.acks, id)
	}
	for id, ch := range t.pings {
		ws = append(ws, waiter{ch, err})
		delete(t.pings, id)
	}
	return ws
}

// describeLoss names the common ways a connection ends.
func describeLoss(err error) error {
	if errors.Is(err, errHeartbeat) {
		return err
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("connection broke: %w", err)
	}
	return fmt.Errorf("server closed the connection: %w", err)
}

var errHeartbeat = errors.New("ipc: the server missed 3 heartbeats")

// keepPubs returns the PUB frames of an unwritten buffer, up to limit bytes:
// they go out again after a reconnect. Other frames are rebuilt or moot.
func keepPubs(buf []byte, limit int) []byte {
	var keep []byte
	for len(buf) >= wire.HeaderSize {
		h, _ := wire.ParseHeader(buf)
		n := wire.HeaderSize + int(h.Len)
		if n > len(buf) {
			break
		}
		if h.Method == opPub && h.Flags&wfAck == 0 && len(keep)+n <= limit {
			keep = append(keep, buf[:n]...)
		}
		buf = buf[n:]
	}
	return keep
}

// reconnect dials again with backoff until it succeeds, the transport
// closes or MaxReconnects attempts failed.
func (t *sockTransport) reconnect() {
	ctx := t.ctx
	var err error
	for attempt := 1; t.o.MaxReconnects <= 0 || attempt <= t.o.MaxReconnects; attempt++ {
		if backoff.Sleep(ctx, t.o.reconnectDelay(attempt)) != nil {
			return
		}
		if err = t.connect(ctx); err == nil {
			t.sink.State(StateReconnected, nil)
			return
		}
		if errors.Is(err, ErrClosed) {
			return
		}
		t.o.Logger.Debug("ipc: reconnect failed", "addr", t.addr, "attempt", attempt, "err", err)
	}
	t.sink.State(StateClosed, fmt.Errorf("ipc: gave up reconnecting to %s after %d attempts: %w", t.addr, t.o.MaxReconnects, err))
}

// heartbeat pings the server every interval and declares it dead once it
// has been silent for 3 (see watchSilence).
func (t *sockTransport) heartbeat() {
	d := t.o.Heartbeat
	ping := func() {
		if !t.connected.Load() {
			return
		}
		o := t.out.Load()
		o.mu.Lock()
		o.addLocked(opPing, 0, 0, nil)
		o.mu.Unlock()
		o.wake()
	}
	check := func(now time.Time) time.Duration {
		if !t.connected.Load() {
			return 3 * d
		}
		t.mu.Lock()
		gen := t.gen
		t.mu.Unlock()
		silent := now.Sub(time.Unix(0, t.lastRecv.Load()))
		if silent >= 3*d {
			t.lost(gen, errHeartbeat)
			return 3 * d
		}
		return 3*d - silent
	}
	watchSilence(t.ctx, d, ping, check)
}

// enqueue appends a frame for the server, waiting while too much is
// queued; while disconnected it keeps PUBs in the reconnect buffer.
// lockOut returns the outbox to append a frame to, locked: the caller
// appends and unlocks. It returns nil without an error for a frame that
// is not kept while disconnected.
func (t *sockTransport) lockOut(size int, pub bool) (*outbox, error) {
	for {
		o := t.out.Load()
		o.mu.Lock()
		if o.closed {
			o.mu.Unlock()
			if t.isClosed() {
				return nil, ErrClosed
			}
			continue // swapped by a connect or a loss: use the new one
		}
		if o.w == nil { // disconnected
			if !pub {
				o.mu.Unlock()
				return nil, nil // rebuilt on reconnect, or moot
			}
			if o.pendingLocked()+size > t.o.ReconnectBufSize {
				o.mu.Unlock()
				return nil, fmt.Errorf("%w: %d bytes are waiting for the reconnect", ErrBufferFull, o.pendingLocked())
			}
		} else if o.pendingLocked() > maxOutbound {
			o.wake()
			if err := o.waitBelowLocked(maxOutbound); err != nil {
				o.mu.Unlock()
				if errors.Is(err, ErrClosed) && !t.isClosed() {
					continue
				}
				return nil, err
			}
		}
		return o, nil
	}
}

func (t *sockTransport) isClosed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// Publish implements Transport.
func (t *sockTransport) Publish(m *Msg, f Flags) error {
	// A request is not kept for the next connection: its requester fails
	// with ErrConnectionLost meanwhile, so nobody would read the answer.
	o, err := t.lockOut(encodedLen(m)+wire.HeaderSize, f&FlagRequest == 0)
	if o != nil {
		o.addMsgLocked(opPub, wireFlags(f), 0, m)
		o.mu.Unlock()
	}
	switch {
	case err != nil:
		return err
	case o == nil:
		return ErrConnectionLost
	case o.w == nil:
		return nil // disconnected: kept for the reconnect
	}
	if f&(FlagRequest|FlagReply) != 0 {
		o.flush(true) // someone waits for this one: write it now
	} else {
		o.wake()
	}
	return nil
}

// PublishSync implements Transport.
func (t *sockTransport) PublishSync(ctx context.Context, m *Msg) error {
	return t.roundTrip(ctx, t.acks, encodedLen(m)+wire.HeaderSize, func(o *outbox, id uint32) {
		o.addMsgLocked(opPub, wfAck, id, m)
	})
}

// roundTrip sends a frame that the server answers by id — a PUB to ack or
// a PING — and waits for the answer in table (t.acks or t.pings): add
// appends the frame, of size bytes, to the locked outbox.
func (t *sockTransport) roundTrip(ctx context.Context, table map[uint32]chan error, size int, add func(o *outbox, id uint32)) error {
	if !t.connected.Load() {
		return ErrConnectionLost
	}
	ch := make(chan error, 1)
	t.mu.Lock()
	t.seq++
	id := t.seq
	table[id] = ch
	t.mu.Unlock()
	o, err := t.lockOut(size, false)
	if o != nil {
		add(o, id)
		o.mu.Unlock()
	}
	if err == nil && o == nil {
		err = ErrConnectionLost
	}
	if err != nil {
		t.complete(table, id, nil)
		<-ch
		return err
	}
	o.flush(true)
	t.startReader()
	return t.wait(ctx, table, id, ch)
}

// wait waits for an ack or pong.
func (t *sockTransport) wait(ctx context.Context, m map[uint32]chan error, id uint32, ch chan error) error {
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		t.mu.Lock()
		delete(m, id)
		t.mu.Unlock()
		return ctx.Err()
	}
}

// Subscribe implements Transport.
func (t *sockTransport) Subscribe(sid uint32, subject, queue string) error {
	t.mu.Lock()
	t.subs[sid] = subSpec{subject, queue}
	t.demandLocked()
	t.mu.Unlock()
	o, err := t.lockOut(0, false)
	if o != nil {
		o.addLocked(opSub, 0, sid, appendSub(nil, subject, queue))
		o.mu.Unlock()
	}
	if err != nil || o == nil {
		return err
	}
	o.wake()
	return nil
}

// Unsubscribe implements Transport.
func (t *sockTransport) Unsubscribe(sid uint32) error {
	t.mu.Lock()
	delete(t.subs, sid)
	t.demandLocked()
	t.mu.Unlock()
	o, err := t.lockOut(0, false)
	if o != nil {
		o.addLocked(opUnsub, 0, sid, nil)
		o.mu.Unlock()
	}
	if err != nil || o == nil {
		return err
	}
	o.wake()
	return nil
}

// Cancel implements Transport.
func (t *sockTransport) Cancel(reply string) error {
	o, err := t.lockOut(0, false)
	if o != nil {
		o.addLocked(opCancel, 0, 0, []byte(reply))
		o.mu.Unlock()
	}
	if err != nil || o == nil {
		return err
	}
	o.wake()
	return nil
}

// Flush implements Transport: a PING answered by a PONG.
func (t *sockTransport) Flush(ctx context.Context) error {
	return t.roundTrip(ctx, t.pings, 0, func(o *outbox, id uint32) {
		o.addLocked(opPing, 0, id, nil)
	})
}

// Close implements Transport.
func (t *sockTransport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.wg.Wait()
		return nil
	}
	t.closed = true
	t.cancel()
	nc := t.nc
	t.nc = nil
	l := t.link
	t.link = nil
	t.cur.Store(nil)
	t.connected.Store(false)
	waiters := t.failWaitersLocked(ErrClosed)
	t.mu.Unlock()
	t.out.Load().close()
	if nc != nil {
		t.out.Load().flush(true) // what was published before Close goes out
		nc.Close()
	}
	if l != nil {
		l.close()
	}
	for _, w := range waiters {
		w.c <- w.err
	}
	t.wg.Wait()
	return nil
}

// Info implements Transport.
func (t *sockTransport) Info() TransportInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	return TransportInfo{
		Backend: "ipc", Server: t.info.ServerID, Identity: t.info.Identity,
		MaxPayload: t.info.MaxPayload, Connected: t.nc != nil, TracksRequests: true,
	}
}
