package ipc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Conn is one participant on a message bus: a client of an ipc [Server]
// ([Dial]), the server's own endpoint ([Server.Conn]), or a NATS connection
// (package natsipc). All three are the same type over a different
// [Transport], so code written against a Conn runs on any of them.
//
// A Conn publishes and subscribes with NATS's subject semantics, makes
// requests whose cancellation reaches the responder, and carries streams
// and channels with flow control. It reconnects by itself when its
// transport can. A Conn is safe for concurrent use.
type Conn struct {
	tr    Transport
	opts  Options
	log   *slog.Logger
	inbox string // "_INBOX.<random>." — every reply subject of this Conn starts so

	ctx    context.Context // ends when the Conn closes: the context of messages that expect no reply
	cancel context.CancelFunc
	start  time.Time

	reqSeq atomic.Uint64 // reply subject tokens
	sidSeq atomic.Uint32 // subscription ids; 1 is the inbox

	mu       sync.Mutex
	subs     map[uint32]*Subscription // guarded by mu
	pending  map[uint64]inboxTarget   // requests and streams waiting on the inbox; guarded by mu
	serving  map[string]*served       // requests being answered, by reply subject; guarded by mu
	gaveUp   gaveUpSet                // requests given up before their context was made; guarded by mu
	idle     chan struct{}            // closed when serving becomes empty; guarded by mu
	inboxOn  bool                     // the inbox subscription was handed to the transport; guarded by mu
	inboxing chan struct{}            // closed when the inbox subscription under way is made; guarded by mu
	state    State                    // guarded by mu
	closed   bool                     // no new work: Close was called or the transport gave up; guarded by mu
	draining bool                     // guarded by mu

	isClosed   atomic.Bool  // closed, for the publish path without the lock
	maxPayload atomic.Int64 // the transport's, cached; reset when it reconnects

	turns     readerTurns // the transport's, if its connection is read by waiting requesters
	deadlines deadlines
	stats     counters
	dlq       *DeadLetterQueue
	breakers  *breakers
	events    eventQueue // user callbacks, in order, on one goroutine

	wg sync.WaitGroup // subscription goroutines, handlers, the event goroutine

	closeOnce sync.Once
	closeErr  error // the transport's Close error; set once by Close
}

// inboxTarget receives messages sent to one reply subject of the Conn.
// deliverInbox is called with Conn.mu held and must not block.
type inboxTarget interface{ deliverInbox(m *Msg) }

const inboxSID = 1

// NewConn starts a Conn over t. Transports call it from their own
// constructors ([Dial], [Server.Conn], natsipc.Connect); applications
// rarely need it.
func NewConn(ctx context.Context, t Transport, opts ...Option) (*Conn, error) {
	o := NewOptions(opts...)
	return newConn(ctx, t, o)
}

func newConn(ctx context.Context, t Transport, o Options) (*Conn, error) {
	c := &Conn{
		tr:      t,
		opts:    o,
		log:     o.Logger,
		inbox:   InboxPrefix + newID() + ".",
		start:   time.Now(),
		subs:    make(map[uint32]*Subscription),
		pending: make(map[uint64]inboxTarget),
		serving: make(map[string]*served),
	}
	c.sidSeq.Store(inboxSID)
	c.turns, _ = t.(readerTurns)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.events.init(&c.wg)
	if o.DeadLetters > 0 {
		c.dlq = newDeadLetterQueue(c, o.DeadLetters)
	}
	if o.Breaker.Enabled {
		c.breakers = newBreakers(o.Breaker)
	}
	if err := t.Open(ctx, sink{c}); err != nil {
		c.cancel()
		c.events.close()
		c.wg.Wait()
		return nil, err
	}
	if o.OnBroadcast != nil {
		if _, err := c.subscribe(subjectBroadcast+".>", "", func(m *Msg) {
			m.Subject = m.Subject[len(subjectBroadcast)+1:]
			o.OnBroadcast(m)
		}, modeOrdered); err != nil {
			c.Close()
			return nil, err
		}
	}
	return c, nil
}

// newID returns 22 random base-62 characters (131 bits).
func newID() string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var b [22]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = digits[int(b[i])%len(digits)]
	}
	return string(b[:])
}

// NewInbox returns a new unique subject to receive replies on. Messages to
// it reach only subscriptions to it.
func (c *Conn) NewInbox() string { return InboxPrefix + newID() }

// MaxPayload is the largest message (headers and data) the bus accepts.
func (c *Conn) MaxPayload() int {
	if n := c.maxPayload.Load(); n > 0 {
		return int(n)
	}
	n := c.tr.Info().MaxPayload
	c.maxPayload.Store(int64(n))
	return n
}

// Info describes the connection's transport.
func (c *Conn) Info() TransportInfo { return c.tr.Info() }

// Transport returns the connection's transport. It is for backend
// packages that give access to what lies beneath (natsipc.NATS returns the
// *nats.Conn); applications do not call its methods.
func (c *Conn) Transport() Transport { return c.tr }

// State returns the connection's state.
func (c *Conn) State() State {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Publish sends data to subject. It returns once the message is queued for
// sending: delivery is at most once, in order per publisher. Errors the
// server reports later (permissions, rate limits) go to the OnError
// callback; use [Conn.PublishSync] to wait for them.
func (c *Conn) Publish(subject string, data []byte) error {
	return c.PublishMsg(&Msg{Subject: subject, Data: data})
}

// PublishMsg sends m; its Reply, if set, is where responders answer.
func (c *Conn) PublishMsg(m *Msg) error {
	if err := c.checkPublish(m); err != nil {
		return err
	}
	return c.publish(m, 0)
}

// PublishSync sends m and waits until the server has routed it. It
// returns ErrNoSubscribers if nobody subscribes to the subject (the
// message then goes to the dead-letter queue), and ErrPermission or
// ErrRateLimited if the server refused it. Over NATS, which has no
// routing acknowledgement, it returns after a flush.
func (c *Conn) PublishSync(ctx context.Context, m *Msg) error {
	if err := c.checkPublish(m); err != nil {
		return err
	}
	if err := c.alive(); err != nil {
		return err
	}
	m, end := c.observePublish(ctx, m, 0)
	err := c.tr.PublishSync(ctx, m)
	end(err)
	if err == nil {
		c.stats.out(m)
	} else if errors.Is(err, ErrNoSubscribers) {
		c.deadLetter(m, ReasonNoSubscribers, err)
	}
	return err
}

// checkPublish validates a message an application publishes.
func (c *Conn) checkPublish(m *Msg) error {
	if err := checkSubject(m.Subject, false); err != nil {
		return err
	}
	if isReserved(m.Subject) {
		return fmt.Errorf("%w: %s", ErrReservedSubject, m.Subject)
	}
	if m.Reply != "" {
		if err := checkSubject(m.Reply, false); err != nil {
			return fmt.Errorf("reply subject: %w", err)
		}
	}
	if m.Header != nil {
		if err := checkHeader(m.Header); err != nil {
			return err
		}
	}
	return c.checkSize(m)
}

func (c *Conn) checkSize(m *Msg) error {
	if max := c.MaxPayload(); max > 0 && m.Size() > max {
		return fmt.Errorf("%w: %s: %d bytes, the limit is %d", ErrMaxPayload, m.Subject, m.Size(), max)
	}
	return nil
}

// publish sends m without validating it (the library's own messages).
func (c *Conn) publish(m *Msg, f Flags) error {
	if c.opts.Observer == nil {
		return c.transmit(m, f)
	}
	m, end := c.observePublish(c.ctx, m, f)
	err := c.transmit(m, f)
	end(err)
	return err
}

// transmit is publish without the Observer (a request, observed as one).
func (c *Conn) transmit(m *Msg, f Flags) error {
	if err := c.alive(); err != nil {
		return err
	}
	if err := c.tr.Publish(m, f); err != nil {
		return err
	}
	c.stats.out(m)
	return nil
}

// alive returns ErrClosed once the Conn is closed.
func (c *Conn) alive() error {
	if c.isClosed.Load() {
		return ErrClosed
	}
	return nil
}

// Flush waits until everything published so far has reached the server.
func (c *Conn) Flush(ctx context.Context) error {
	if err := c.alive(); err != nil {
		return err
	}
	return c.tr.Flush(ctx)
}

// Close closes the connection at once: subscriptions stop, pending
// requests and streams fail with ErrClosed, running handlers see their
// contexts cancelled. It waits for the Conn's goroutines, so handlers must
// honour their context. Close is idempotent.
func (c *Conn) Close() error {
	// closed may be set already, by a transport that gave up: the
	// transport and the event goroutine still have to stop.
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		c.isClosed.Store(true)
		c.mu.Unlock()
		// Handlers' contexts end first: a handler may run inline on a
		// goroutine that reads the transport, which Close waits for.
		c.shutdown(ErrClosed)
		c.closeErr = c.tr.Close()
		c.setState(StateClosed, nil)
		c.events.close()
	})
	c.wg.Wait()
	return c.closeErr
}

// shutdown fails everything waiting and stops the subscriptions.
func (c *Conn) shutdown(cause error) {
	c.cancel()
	c.deadlines.stop()
	c.mu.Lock()
	subs := c.subs
	c.subs = map[uint32]*Subscription{}
	pending := c.pending
	c.pending = map[uint64]inboxTarget{}
	serving := c.serving
	c.serving = map[string]*served{}
	c.servingIdleLocked()
	c.mu.Unlock()
	for _, s := range subs {
		s.stop()
	}
	failTargets(pending, cause)
	for _, sv := range serving {
		sv.cancel(cause)
	}
}

func failTargets(pending map[uint64]inboxTarget, cause error) {
	for _, t := range pending {
		if f, ok := t.(interface{ fail(error) }); ok {
			f.fail(cause)
		}
	}
}

// Drain stops taking new work and closes the connection gracefully: every
// subscription is unsubscribed at the server, messages already received are
// handled, running request handlers finish and their responses are
// flushed; then the connection closes. If ctx ends first, Drain closes at
// once and returns ctx's error.
func (c *Conn) Drain(ctx context.Context) error {
	c.mu.Lock()
	if c.closed || c.draining {
		c.mu.Unlock()
		return c.Close()
	}
	c.draining = true
	subs := make([]*Subscription, 0, len(c.subs))
	for _, s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	c.setState(StateDraining, nil)
	var errs []error
	for _, s := range subs {
		if err := c.tr.Unsubscribe(s.sid); err != nil {
			errs = append(errs, err)
		}
	}
	// After a flush the server has seen the unsubscriptions: nothing more
	// is on its way. Then let the queues empty and handlers finish.
	if err := c.tr.Flush(ctx); err != nil {
		errs = append(errs, err)
	}
	for _, s := range subs {
		s.drain()
	}
	done := make(chan struct{})
	go func() { // waits for work Close would otherwise cancel; ends with it
		for _, s := range subs {
			s.wait()
		}
		c.waitServing(ctx)
		close(done)
	}()
	select {
	case <-done:
		if err := c.tr.Flush(ctx); err != nil {
			errs = append(errs, err)
		}
	case <-ctx.Done():
		errs = append(errs, ctx.Err())
	}
	errs = append(errs, c.Close())
	<-done
	return errors.Join(errs...)
}

// setState records and reports a state change.
func (c *Conn) setState(s State, err error) {
	c.mu.Lock()
	if c.state == s && s != StateReconnected || c.state == StateClosed {
		c.mu.Unlock()
		return
	}
	c.state = s
	c.mu.Unlock()
	if s == StateReconnected {
		c.stats.reconnects.Add(1)
	}
	c.log.Debug("ipc: state", "state", s, "err", err)
	if fn := c.opts.OnState; fn != nil {
		c.events.push(func() { fn(s, err) })
	}
}

// asyncError reports an error nobody is waiting for.
func (c *Conn) asyncError(err error) {
	c.stats.errors.Add(1)
	c.log.Debug("ipc: async error", "err", err)
	if fn := c.opts.OnError; fn != nil {
		c.events.pushError(func() { fn(err) })
	}
}

// sink adapts a Conn to the Sink interface without putting Sink's methods
// on Conn.
type sink struct{ c *Conn }

func (s sink) Deliver(sid uint32, m *Msg, f Flags) { s.c.deliver(sid, m, f, nil) }
func (s sink) Cancel(reply string)                 { s.c.cancelServing(reply, errRequesterGone) }
func (s sink) Dropped(sid uint32, n int)           { s.c.dropped(sid, n) }
func (s sink) AsyncError(err error)                { s.c.asyncError(err) }

func (s sink) State(st State, err error) {
	c := s.c
	if st == StateDisconnected {
		// Whatever waited on the broken connection cannot be answered
		// over the next one: fail it now, saying why. Requests being
		// served are abandoned only where the bus has told their
		// requesters already; elsewhere (NATS) the answer still goes out
		// after a reconnection.
		cause := ErrConnectionLost
		if err != nil {
			cause = fmt.Errorf("%w: %w", ErrConnectionLost, err)
		}
		tracked := c.tr.Info().TracksRequests
		c.mu.Lock()
		pending := c.pending
		c.pending = map[uint64]inboxTarget{}
		var serving map[string]*served
		if tracked {
			serving = c.serving
			c.serving = map[string]*served{}
			c.servingIdleLocked()
		}
		c.mu.Unlock()
		failTargets(pending, cause)
		for _, sv := range serving {
			sv.cancel(cause)
		}
	}
	if st == StateClosed {
		c.mu.Lock()
		already := c.closed
		c.closed = true
		c.isClosed.Store(true)
		c.mu.Unlock()
		if !already {
			cause := ErrClosed
			if err != nil {
				cause = fmt.Errorf("%w: %w", ErrClosed, err)
			}
			c.shutdown(cause)
		}
	}
	if st == StateConnected || st == StateReconnected {
		c.maxPayload.Store(0) // the server may have changed
	}
	c.setState(st, err)
	if st == StateReconnected {
		c.setState(StateConnected, nil)
	}
}

// deliver routes one message from the transport (its reading goroutine).
// slot, if not nil, is the reading goroutine's offer to run the handler
// itself (see inlineSlot).
func (c *Conn) deliver(sid uint32, m *Msg, f Flags, slot *inlineSlot) {
	c.stats.in(m)
	m.conn = c
	c.observeDeliver(m)
	if sid == inboxSID {
		c.deliverInbox(m)
		return
	}
	if !m.Expires.IsZero() && time.Now().After(m.Expires) {
		c.deadLetter(m, ReasonExpired, fmt.Errorf("expired at %v", m.Expires))
		return
	}
	c.mu.Lock()
	s := c.subs[sid]
	c.mu.Unlock()
	if s == nil {
		return // unsubscribed while the message was on its way
	}
	if m.Reply != "" && (s.mode == modeConcurrent || m.meta.keepalive > 0) {
		c.track(m)
	}
	s.enqueue(m, slot)
}

// deliverInbox hands a message sent to one of our reply subjects to what
// waits for it.
func (c *Conn) deliverInbox(m *Msg) {
	tok, ok := inboxToken(m.Subject, c.inbox)
	if !ok {
		return
	}
	// Under the lock, so that the target cannot be forgotten (and reused)
	// between the lookup and the delivery; deliverInbox never blocks.
	c.mu.Lock()
	if t := c.pending[tok]; t != nil {
		t.deliverInbox(m)
	}
	c.mu.Unlock()
}

// inboxToken parses the number after our inbox prefix.
func inboxToken(subject, prefix string) (uint64, bool) {
	if len(subject) <= len(prefix) || subject[:len(prefix)] != prefix {
		return 0, false
	}
	var n uint64
	for _, ch := range []byte(subject[len(prefix):]) {
		if ch < '0' || ch > '9' || n > (1<<64-1)/10-1 {
			return 0, false
		}
		n = n*10 + uint64(ch-'0')
	}
	return n, true
}

// eventQueue runs user callbacks in order on one goroutine, never on a
// reading goroutine and never under the Conn's locks. Errors beyond
// maxQueuedErrors are dropped (and counted); state changes never are.
type eventQueue struct {
	mu     sync.Mutex
	q      []func()
	errs   int
	wake   chan struct{}
	done   chan struct{}
	closed bool
}

const maxQueuedErrors = 1024

func (e *eventQueue) init(wg *sync.WaitGroup) {
	e.wake = make(chan struct{}, 1)
	e.done = make(chan struct{})
	wg.Go(e.run)
}

func (e *eventQueue) push(fn func()) { e.add(fn, false) }

func (e *eventQueue) pushError(fn func()) { e.add(fn, true) }

func (e *eventQueue) add(fn func(), isErr bool) {
	e.mu.Lock()
	if e.closed || isErr && e.errs >= maxQueuedErrors {
		e.mu.Unlock()
		return
	}
	if isErr {
		e.errs++
		inner := fn
		fn = func() {
			e.mu.Lock()
			e.errs--
			e.mu.Unlock()
			inner()
		}
	}
	e.q = append(e.q, fn)
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// close runs what is queued and stops.
func (e *eventQueue) close() {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.done)
	}
	e.mu.Unlock()
}

func (e *eventQueue) run() {
	for {
		e.mu.Lock()
		q := e.q
		e.q = nil
		closed := e.closed
		e.mu.Unlock()
		for _, fn := range q {
			fn()
		}
		if len(q) > 0 {
			continue
		}
		if closed {
			return
		}
		select {
		case <-e.wake:
		case <-e.done:
		}
	}
}
