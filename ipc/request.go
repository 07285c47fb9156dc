package ipc

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procxy/procxy/internal/backoff"
	"github.com/procxy/procxy/internal/readturn"
	"github.com/procxy/procxy/rpc/codec"
)

// RequestOption configures one request.
type RequestOption interface{ applyRequest(*requestOpts) }

type requestOpts struct {
	deadline   time.Time // the connection's CallTimeout, when ctx has no deadline
	idempotent bool
	keepalive  time.Duration
	header     Header
	codec      codec.Codec // typed helpers only
}

type reqOpt func(*requestOpts)

func (f reqOpt) applyRequest(o *requestOpts) { f(o) }

// Idempotent marks a request as safe to send again: when the connection
// has a retry policy (the default one unless [WithRetry] sets another), a
// request that found no responder, whose responder went away or whose
// connection broke is retried with backoff until its context ends.
func Idempotent() RequestOption { return reqOpt(func(o *requestOpts) { o.idempotent = true }) }

// Keepalive asks the responder to send a sign of life every d while it
// works, and fails the request with ErrResponderGone after three silent
// intervals. Over the ipc server a responder's death is noticed anyway;
// over NATS this is how a caller learns of it before its deadline.
func Keepalive(d time.Duration) RequestOption {
	return reqOpt(func(o *requestOpts) { o.keepalive = d })
}

// WithHeader adds headers to the request that [Call] or [Stream] sends.
func WithHeader(h Header) RequestOption { return reqOpt(func(o *requestOpts) { o.header = h }) }

// Request sends data to subject and waits for the first reply. The
// context bounds the wait; without a deadline the connection's
// CallTimeout does (30 s by default). Cancelling the context, or its
// deadline passing, cancels the responder's context too ([Msg.Context]).
//
// It returns ErrNoResponders when nobody subscribes to subject, a
// *RemoteError when the responder's handler failed ([Handle]), and
// ErrResponderGone when the responder went away before answering. Every
// error is a *RequestError naming the subject.
func (c *Conn) Request(ctx context.Context, subject string, data []byte, opts ...RequestOption) (*Msg, error) {
	return c.RequestMsg(ctx, &Msg{Subject: subject, Data: data}, opts...)
}

// RequestMsg is Request with headers: it sends m (its Reply is ignored).
func (c *Conn) RequestMsg(ctx context.Context, m *Msg, opts ...RequestOption) (*Msg, error) {
	var o requestOpts
	if len(opts) > 0 {
		o = requestOptions(opts) // its copy escapes: without options, nothing is allocated for them
	}
	req := *m
	req.Reply = ""
	if err := c.checkPublish(&req); err != nil {
		return nil, &RequestError{Subject: m.Subject, Err: err}
	}
	req.meta = meta{keepalive: o.keepalive}
	resp, err := c.retrying(ctx, &req, o, c.request) // each attempt sets its own reply and timeout
	if err != nil {
		return nil, &RequestError{Subject: m.Subject, Err: err}
	}
	return resp, nil
}

// retrying runs one request with the connection's circuit breaker and,
// for idempotent requests, its retry policy.
func (c *Conn) retrying(ctx context.Context, m *Msg, o requestOpts, do func(context.Context, *Msg, requestOpts) (*Msg, error)) (*Msg, error) {
	if _, ok := ctx.Deadline(); !ok && c.opts.CallTimeout > 0 {
		// A deadline of our own, without the cost of a derived context.
		o.deadline = time.Now().Add(c.opts.CallTimeout)
	}
	p := c.opts.Retry
	for attempt := 1; ; attempt++ {
		resp, err := c.guarded(ctx, m, o, do)
		if err == nil || !o.idempotent || attempt >= p.Attempts || !p.retryable(err) || ctx.Err() != nil ||
			!o.deadline.IsZero() && time.Now().After(o.deadline) {
			return resp, err
		}
		c.log.Debug("ipc: retrying", "subject", m.Subject, "attempt", attempt, "err", err)
		wait := p.backoff(attempt)
		if !o.deadline.IsZero() {
			wait = min(wait, time.Until(o.deadline))
		}
		if werr := backoff.Sleep(ctx, wait); werr != nil {
			return nil, fmt.Errorf("%w (after %d attempts; the last failed: %w)", werr, attempt, err)
		}
	}
}

// request makes one attempt. m is the caller's copy; its Reply and
// timeout are set here.
func (c *Conn) request(ctx context.Context, m *Msg, o requestOpts) (*Msg, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := c.ensureInbox(); err != nil {
		return nil, err
	}
	start := time.Now()
	end := c.observeRequest(ctx, m)
	deadline := o.deadline
	if dl, ok := ctx.Deadline(); ok && (deadline.IsZero() || dl.Before(deadline)) {
		deadline = dl
	}
	if !deadline.IsZero() {
		if m.meta.timeout = time.Until(deadline); m.meta.timeout <= 0 {
			return nil, context.DeadlineExceeded
		}
	}
	p := pendingPool.Get().(*pending)
	p.turn, p.deadline = nil, 0
	p.expired.Store(false)
	if c.turns != nil {
		if o.keepalive == 0 {
			// The requester reads its reply from the connection itself.
			if p.turn = c.turns.turn(); p.turn != nil {
				p.w.Reset()
			}
		}
		if p.turn == nil {
			c.turns.need(1) // a background reader delivers the reply
			defer c.turns.need(-1)
		}
	}
	tok := c.reqSeq.Add(1)
	m.Reply = c.inbox + strconv.FormatUint(tok, 10)
	if err := c.addPending(tok, p); err != nil {
		return nil, err
	}
	if err := c.transmit(m, FlagRequest); err != nil {
		c.removePending(tok, p)
		return nil, err
	}
	var resp *Msg
	var err error
	if p.turn != nil {
		resp, err = c.awaitTurn(ctx, m.Reply, tok, p, o.deadline)
	} else {
		resp, err = c.await(ctx, m.Reply, tok, p, o.deadline, o.keepalive)
	}
	c.stats.request(time.Since(start), err)
	end(resp, err)
	return resp, err
}

// await waits for the reply sent to reply, until ctx ends, the deadline
// of our own (if not zero) passes, or a keepalive interval is missed.
func (c *Conn) await(ctx context.Context, reply string, tok uint64, p *pending, deadline time.Time, keepalive time.Duration) (*Msg, error) {
	var expired <-chan time.Time
	if !deadline.IsZero() {
		expired = p.arm(time.Until(deadline))
		defer p.timer.Stop()
	}
	var silent <-chan time.Time
	var t *time.Timer
	if keepalive > 0 {
		t = time.NewTimer(3 * keepalive)
		defer t.Stop()
		silent = t.C
	}
	for {
		select {
		case r := <-p.ch:
			if r.err == nil && r.m.meta.kind == kindAlive {
				if t != nil {
					t.Reset(3 * keepalive)
				}
				continue
			}
			if c.removePending(tok, p) {
				pendingPool.Put(p)
			}
			if r.err != nil {
				return nil, r.err
			}
			if r.m.meta.status != 0 {
				return nil, statusError(r.m)
			}
			return r.m, nil
		case <-ctx.Done():
			c.giveUp(tok, p, reply)
			return nil, ctx.Err()
		case <-expired:
			c.giveUp(tok, p, reply)
			return nil, context.DeadlineExceeded
		case <-silent:
			c.giveUp(tok, p, reply)
			return nil, fmt.Errorf("%w: no sign of life for %v", ErrResponderGone, 3*keepalive)
		}
	}
}

// awaitTurn is await for a transport whose connection the requester
// reads itself (internal/readturn): its reply usually wakes it straight
// from the network poller, with no other goroutine in between.
func (c *Conn) awaitTurn(ctx context.Context, reply string, tok uint64, p *pending, deadline time.Time) (*Msg, error) {
	if !deadline.IsZero() {
		c.watchDeadline(p, deadline)
	}
	if !p.turn.Wait(ctx, &p.w) {
		c.giveUp(tok, p, reply)
		if p.expired.Load() || ctx.Err() == nil {
			return nil, context.DeadlineExceeded
		}
		return nil, ctx.Err()
	}
	r := <-p.ch // Done follows the result
	if c.removePending(tok, p) {
		pendingPool.Put(p)
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.m.meta.status != 0 {
		return nil, statusError(r.m)
	}
	return r.m, nil
}

// deadlines ends the waits of requesters that read their connection
// (awaitTurn) at the connection's own deadline for them (CallTimeout)
// with one timer per Conn, set for the earliest deadline and moved only
// when a request with an earlier one comes. Requests that share the
// timeout have increasing deadlines, so the timer is set about once per
// CallTimeout rather than once per request: setting a runtime timer
// wakes an idle thread to watch it, which on a quiet machine costs about
// as much as the goroutine handoff the requester saves.
type deadlines struct {
	mu    sync.Mutex
	timer *time.Timer // made on first use
	at    int64       // when timer fires (see monotime); 0: not set
	off   bool        // the Conn closed
}

// stop stops the timer for good.
func (d *deadlines) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.off = true
	if d.timer != nil {
		d.timer.Stop()
	}
}

// watchDeadline makes the wait of p end at deadline (before p is sent).
func (c *Conn) watchDeadline(p *pending, deadline time.Time) {
	at := monotime() + int64(time.Until(deadline))
	c.mu.Lock()
	p.deadline = at
	c.mu.Unlock()
	d := &c.deadlines
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.off || d.at != 0 && d.at <= at {
		return
	}
	d.at = at
	if d.timer == nil {
		d.timer = time.AfterFunc(time.Duration(at-monotime()), c.expire)
	} else {
		d.timer.Reset(time.Duration(at - monotime()))
	}
}

// expire ends the waits whose deadline has passed and sets the timer for
// the next one.
func (c *Conn) expire() {
	d := &c.deadlines
	d.mu.Lock()
	d.at = 0
	d.mu.Unlock()
	now := monotime()
	var next int64
	c.mu.Lock()
	for _, t := range c.pending {
		p, ok := t.(*pending)
		switch {
		case !ok || p.deadline == 0:
		case p.deadline <= now:
			p.deadline = 0
			p.expired.Store(true)
			// Under c.mu: p cannot be answered and reused meanwhile.
			p.turn.Cancel(&p.w)
		case next == 0 || p.deadline < next:
			next = p.deadline
		}
	}
	c.mu.Unlock()
	if next == 0 {
		return
	}
	d.mu.Lock()
	if !d.off && (d.at == 0 || next < d.at) {
		d.at = next
		d.timer.Reset(time.Duration(next - monotime()))
	}
	d.mu.Unlock()
}

var epoch = time.Now()

// monotime is a monotonic clock in nanoseconds.
func monotime() int64 { return int64(time.Since(epoch)) }

// giveUp forgets a request and tells its responders.
func (c *Conn) giveUp(tok uint64, p *pending, reply string) {
	if c.removePending(tok, p) {
		pendingPool.Put(p)
	}
	if err := c.tr.Cancel(reply); err != nil {
		c.log.Debug("ipc: cannot send a cancellation", "reply", reply, "err", err)
	}
}

// pending is a request waiting on the inbox. Pooled with its timer.
type pending struct {
	ch    chan result
	timer *time.Timer
	// With a transport whose connection the requester reads: the
	// connection's arbiter and the requester's wait, its deadline (see
	// deadlines; guarded by Conn.mu), and whether the deadline ended it.
	turn     *readturn.Arbiter
	w        readturn.Waiter
	deadline int64
	expired  atomic.Bool
}

// readerTurns is implemented by a transport whose connection is read by
// the goroutines that wait for its frames (sockTransport).
type readerTurns interface {
	// turn returns the live connection's arbiter, nil while disconnected.
	turn() *readturn.Arbiter
	// need adds d to the waits that need a background reader: they wait
	// for frames that no requester reads.
	need(d int)
}

// arm starts the pending's timer for d and returns its channel.
func (p *pending) arm(d time.Duration) <-chan time.Time {
	if p.timer == nil {
		p.timer = time.NewTimer(d)
	} else {
		p.timer.Reset(d)
	}
	return p.timer.C
}

type result struct {
	m   *Msg
	err error
}

var pendingPool = sync.Pool{New: func() any { return &pending{ch: make(chan result, 4)} }}

func (p *pending) deliverInbox(m *Msg) {
	select {
	case p.ch <- result{m: m}:
		if p.turn != nil {
			p.turn.Done(&p.w)
		}
	default: // a second reply (several responders) or a late keepalive: dropped
	}
}

func (p *pending) fail(err error) {
	select {
	case p.ch <- result{err: err}:
		if p.turn != nil {
			p.turn.Done(&p.w)
		}
	default:
	}
}

func (c *Conn) addPending(tok uint64, t inboxTarget) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return ErrClosed
	case c.state == StateDisconnected:
		return ErrConnectionLost
	}
	c.pending[tok] = t
	return nil
}

// removePending forgets tok if it still maps to t; it reports whether it did.
func (c *Conn) removePending(tok uint64, t inboxTarget) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending[tok] != t {
		// The connection failed it: drain the failure so a pooled
		// pending starts empty.
		if p, ok := t.(*pending); ok {
			for len(p.ch) > 0 {
				<-p.ch
			}
		}
		return false
	}
	delete(c.pending, tok)
	if p, ok := t.(*pending); ok {
		for len(p.ch) > 0 {
			<-p.ch
		}
	}
	return true
}

// ensureInbox subscribes to the Conn's reply subjects once. Other
// requests wait until the subscription has been handed to the transport:
// one sent before it could be answered before the bus knows the inbox,
// and its reply would go to nobody.
func (c *Conn) ensureInbox() error {
	for {
		c.mu.Lock()
		if c.inboxOn {
			c.mu.Unlock()
			return nil
		}
		if w := c.inboxing; w != nil { // another request is subscribing
			c.mu.Unlock()
			<-w
			continue
		}
		w := make(chan struct{})
		c.inboxing = w
		c.mu.Unlock()
		err := c.tr.Subscribe(inboxSID, c.inbox+"*", "")
		c.mu.Lock()
		c.inboxOn, c.inboxing = err == nil, nil
		c.mu.Unlock()
		close(w)
		return err
	}
}

// newReply allocates a reply subject routed to t.
func (c *Conn) newReply(t inboxTarget) (string, uint64, error) {
	if err := c.ensureInbox(); err != nil {
		return "", 0, err
	}
	tok := c.reqSeq.Add(1)
	if err := c.addPending(tok, t); err != nil {
		return "", 0, err
	}
	return c.inbox + strconv.FormatUint(tok, 10), tok, nil
}

// isTransient reports errors after which the same request may succeed.
func isTransient(err error) bool {
	return errors.Is(err, ErrNoResponders) || errors.Is(err, ErrResponderGone) ||
		errors.Is(err, ErrConnectionLost) || errors.Is(err, ErrServerShutdown)
}
