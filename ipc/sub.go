package ipc

import (
	"context"
	"fmt"
	"iter"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// MsgHandler handles one message of a subscription.
type MsgHandler func(m *Msg)

type subMode uint8

const (
	modeOrdered    subMode = iota // one goroutine, messages in order (NATS's async subscription)
	modeConcurrent                // each message on its own goroutine (request handlers)
	modeSync                      // the application pulls with Next
)

// Subscription is interest in a subject. Messages wait in a bounded queue
// (see [PendingLimits]); when it is full, new messages are dropped, counted
// in Dropped and reported to the connection's OnError callback as
// ErrSlowConsumer. A Subscription is safe for concurrent use.
type Subscription struct {
	conn    *Conn
	sid     uint32
	subject string
	queue   string
	handler MsgHandler
	mode    subMode
	maxRun  int // modeConcurrent: handlers at once

	mu       sync.Mutex
	q        []*Msg         // waiting messages; guarded by mu
	spare    []*Msg         // an emptied batch, for q to reuse; guarded by mu
	qBytes   int            // guarded by mu
	running  int            // modeConcurrent: handlers running; guarded by mu
	busy     bool           // modeOrdered: a reading goroutine runs a handler inline; guarded by mu
	batching bool           // modeOrdered: run is calling handlers; guarded by mu
	closed   bool           // no more deliveries; guarded by mu
	draining bool           // no more enqueues: stop once the queue is empty; guarded by mu
	limit    uint64         // unsubscribe after this many messages; 0: none; guarded by mu
	received uint64         // messages accepted into the queue; guarded by mu
	slow     bool           // drops since the last accepted message; guarded by mu
	wake     chan struct{}  // one token: the queue changed
	done     chan struct{}  // closed when the subscription has stopped and its handlers returned
	workers  sync.WaitGroup // modeConcurrent workers and handlers running inline
	cost     cost           // how long the handler has recently taken

	dropped   atomic.Uint64
	delivered atomic.Uint64
}

// Subscribe calls h for every message on subject (wildcards allowed), one
// at a time, in the order they arrived. A nil h makes a pull subscription:
// read it with [Subscription.Next] or [Subscription.Messages].
//
// h runs on the subscription's goroutine, or, when it has been quick and
// nothing is queued, on the goroutine that read the message from the
// connection, which saves a goroutine handoff per message. A handler that
// blocks there holds up the connection's other messages for about a
// millisecond, after which another goroutine reads them; later messages
// for the subscription wait for it as usual.
func (c *Conn) Subscribe(subject string, h MsgHandler) (*Subscription, error) {
	return c.QueueSubscribe(subject, "", h)
}

// QueueSubscribe is Subscribe as a member of queue group queue: each
// message on subject goes to one member of the group.
func (c *Conn) QueueSubscribe(subject, queue string, h MsgHandler) (*Subscription, error) {
	if err := checkSubject(subject, true); err != nil {
		return nil, err
	}
	if queue != "" {
		if err := checkSubject(queue, false); err != nil {
			return nil, fmt.Errorf("queue group name: %w", err)
		}
	}
	mode := modeOrdered
	if h == nil {
		mode = modeSync
	}
	return c.subscribe(subject, queue, h, mode)
}

func (c *Conn) subscribe(subject, queue string, h MsgHandler, mode subMode) (*Subscription, error) {
	return c.subscribeLimit(subject, queue, h, mode, DefaultMaxConcurrent)
}

// subscribeLimit is subscribe with the limit of handlers running at once
// (modeConcurrent), set before the first message can arrive.
func (c *Conn) subscribeLimit(subject, queue string, h MsgHandler, mode subMode, maxRun int) (*Subscription, error) {
	s := &Subscription{
		conn: c, subject: subject, queue: queue, handler: h, mode: mode,
		maxRun: maxRun,
		wake:   make(chan struct{}, 1), done: make(chan struct{}),
	}
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return nil, ErrClosed
	case c.draining:
		c.mu.Unlock()
		return nil, ErrDraining
	}
	s.sid = c.sidSeq.Add(1)
	c.subs[s.sid] = s
	c.mu.Unlock()
	if mode == modeOrdered {
		c.wg.Go(s.run)
	}
	if err := c.tr.Subscribe(s.sid, subject, queue); err != nil {
		c.removeSub(s)
		s.stop()
		return nil, err
	}
	return s, nil
}

// Subject returns the subscribed subject.
func (s *Subscription) Subject() string { return s.subject }

// Queue returns the queue group, or "".
func (s *Subscription) Queue() string { return s.queue }

// Dropped returns how many messages were dropped for this subscription,
// by its own full queue or by the server's full queue for the connection.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Delivered returns how many messages were handed to the handler (or to Next).
func (s *Subscription) Delivered() uint64 { return s.delivered.Load() }

// Pending returns the messages and bytes waiting in the queue.
func (s *Subscription) Pending() (msgs, bytes int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.q), s.qBytes
}

// Unsubscribe stops the subscription at once; messages still queued are
// discarded. It is idempotent.
func (s *Subscription) Unsubscribe() error {
	if !s.conn.removeSub(s) {
		return nil
	}
	err := s.conn.tr.Unsubscribe(s.sid)
	s.stop()
	return err
}

// AutoUnsubscribe makes the subscription end by itself after n messages in
// all (counting those already received).
func (s *Subscription) AutoUnsubscribe(n int) error {
	s.mu.Lock()
	s.limit = uint64(n)
	over := s.received >= s.limit
	s.mu.Unlock()
	if over {
		return s.Drain(context.Background())
	}
	return nil
}

// Drain unsubscribes at the server, then lets the handler process what is
// already queued, and returns when it has (or when ctx ends).
func (s *Subscription) Drain(ctx context.Context) error {
	c := s.conn
	if c.hasSub(s) {
		// The subscription keeps receiving until a flush proves the server
		// saw the unsubscription: what it sent before still arrives.
		err := c.tr.Unsubscribe(s.sid)
		if err == nil {
			err = c.tr.Flush(ctx)
		}
		c.removeSub(s)
		if err != nil {
			s.stop()
			return err
		}
	}
	s.drain()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.stop()
		return ctx.Err()
	}
}

func (c *Conn) hasSub(s *Subscription) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.subs[s.sid] == s
}

// removeSub forgets s; it reports whether s was still registered.
func (c *Conn) removeSub(s *Subscription) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.subs[s.sid] != s {
		return false
	}
	delete(c.subs, s.sid)
	return true
}

// enqueue accepts one message (transport goroutine). With slot set, the
// reading goroutine offers to run the handler itself once the frame is
// routed (see inlineSlot).
func (s *Subscription) enqueue(m *Msg, slot *inlineSlot) {
	size := m.Size()
	s.mu.Lock()
	if s.closed || s.draining || s.limit > 0 && s.received >= s.limit {
		s.mu.Unlock()
		s.conn.endServe(m)
		return
	}
	if len(s.q) >= s.conn.opts.SubPendingMsgs || s.qBytes+size > s.conn.opts.SubPendingBytes {
		first := !s.slow
		s.slow = true
		s.mu.Unlock()
		s.drop(m, 1, first)
		return
	}
	s.slow = false
	s.received++
	last := s.limit > 0 && s.received >= s.limit
	switch {
	case slot != nil && slot.sub == nil && s.inlinableLocked(slot.more):
		if s.mode == modeConcurrent {
			s.running++
		} else {
			s.busy = true
		}
		s.workers.Add(1)
		s.mu.Unlock()
		slot.sub, slot.m = s, m
	case s.mode == modeConcurrent && s.running < s.maxRun:
		s.running++
		s.workers.Add(1) // under mu: stop, which waits for the workers, cannot have begun
		s.mu.Unlock()
		go func() {
			defer s.workers.Done()
			s.work(m)
		}()
	default:
		s.q = append(s.q, m)
		s.qBytes += size
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	if last {
		s.conn.wg.Go(func() { _ = s.Drain(context.Background()) })
	}
}

// drop counts lost messages and reports the first of a burst.
func (s *Subscription) drop(m *Msg, n int, report bool) {
	s.dropped.Add(uint64(n))
	s.conn.stats.drops.Add(uint64(n))
	if m != nil {
		s.conn.deadLetter(m, ReasonSlowConsumer, ErrSlowConsumer)
		s.conn.endServe(m)
	}
	if report {
		s.conn.asyncError(fmt.Errorf("%w: subscription to %s", ErrSlowConsumer, s.subject))
	}
}

// run delivers queued messages in order (modeOrdered). While a reading
// goroutine runs the handler inline (busy), it waits: the messages queued
// meanwhile came after that one.
func (s *Subscription) run() {
	defer func() {
		s.workers.Wait() // a handler running inline
		close(s.done)
	}()
	for {
		s.mu.Lock()
		for !s.closed && (s.busy || len(s.q) == 0 && !s.draining) {
			s.mu.Unlock()
			<-s.wake
			s.mu.Lock()
		}
		if s.closed || len(s.q) == 0 {
			s.mu.Unlock()
			return
		}
		batch := s.q
		s.q, s.qBytes, s.spare = s.spare[:0], 0, nil
		s.batching = true
		s.mu.Unlock()
		for i, m := range batch {
			batch[i] = nil
			if s.isClosed() {
				s.conn.endServe(m)
				continue
			}
			s.timedCall(m)
		}
		s.mu.Lock()
		s.batching = false
		if cap(batch) <= 4096 {
			s.spare = batch[:0] // the next batch reuses it
		}
		s.mu.Unlock()
	}
}

// Inline handling. A reading goroutine that routes a message to a
// subscription with a handler may run the handler itself, after the frame
// is routed, instead of waking the subscription's goroutine: a request
// answered by a short handler then costs no goroutine handoff. It does so
// while the subscription is idle (modeOrdered: nothing queued and no
// handler running, so order is kept) or below its concurrency limit
// (modeConcurrent), and when the handler has recently been quick: under
// inlineQuick, or under inlineMax when no other frame is buffered behind
// the message. The reading goroutine marks its turn as serving inline
// (internal/readturn), so a handler that blocks or runs long loses the
// reading to another goroutine after a watchdog period.
const (
	inlineQuick = 10 * time.Microsecond
	inlineMax   = 200 * time.Microsecond
)

// inlineSlot is a reading goroutine's offer to run one handler inline:
// enqueue fills it (sub and m) when it accepts.
type inlineSlot struct {
	more bool // another frame is buffered behind this one
	sub  *Subscription
	m    *Msg
}

// inlinableLocked reports whether a reading goroutine may run the handler
// for the next message now (caller holds mu).
func (s *Subscription) inlinableLocked(more bool) bool {
	switch s.mode {
	case modeOrdered:
		if s.busy || s.batching || len(s.q) > 0 {
			return false
		}
	case modeConcurrent:
		if s.running >= s.maxRun {
			return false
		}
	default:
		return false
	}
	avg := time.Duration(s.cost.avg.Load())
	return avg < inlineMax && (!more || avg < inlineQuick)
}

// take returns what the slot holds and empties it, for the reading
// goroutine to run before it marks its turn inline: once it has, another
// goroutine may take the turn and fill the slot again.
func (sl *inlineSlot) take() inlineSlot {
	job := *sl
	sl.sub, sl.m = nil, nil
	return job
}

// run runs the handler taken from a slot, on the calling goroutine.
func (job inlineSlot) run() {
	s, m := job.sub, job.m
	defer s.workers.Done()
	if s.isClosed() {
		s.conn.endServe(m)
	} else {
		s.timedCall(m)
	}
	s.mu.Lock()
	if s.mode == modeOrdered {
		s.busy = false
		wake := len(s.q) > 0 || s.draining
		s.mu.Unlock()
		if wake {
			s.signal()
		}
		return
	}
	if len(s.q) > 0 && !s.closed { // queued behind the limit: a worker takes them
		next := s.q[0]
		s.q[0] = nil
		s.q = s.q[1:]
		s.qBytes -= next.Size()
		s.mu.Unlock()
		s.workers.Go(func() { s.work(next) })
		return
	}
	s.running--
	s.mu.Unlock()
}

// cost is an exponentially weighted moving average of a handler's run
// time, in nanoseconds.
type cost struct{ avg atomic.Int64 }

func (c *cost) add(d time.Duration) {
	old := c.avg.Load()
	c.avg.Store(old + (int64(d)-old)/4) // racy updates lose a sample at worst
}

// timedCall is call, timed for the inline decision.
func (s *Subscription) timedCall(m *Msg) {
	start := time.Now()
	s.call(m)
	s.cost.add(time.Since(start))
}

// work runs handlers for modeConcurrent: m first, then whatever queued up
// while the limit of running handlers was reached.
func (s *Subscription) work(m *Msg) {
	for m != nil {
		s.timedCall(m)
		s.mu.Lock()
		m = nil
		if len(s.q) > 0 && !s.closed {
			m = s.q[0]
			s.q[0] = nil
			s.q = s.q[1:]
			s.qBytes -= m.Size()
		} else {
			s.running--
		}
		s.mu.Unlock()
	}
}

// call runs the handler for one message; a panic is reported, not fatal.
func (s *Subscription) call(m *Msg) {
	s.delivered.Add(1)
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("ipc: handler for %s panicked: %v\n%s", s.subject, p, debug.Stack())
			s.conn.asyncError(err)
			if m.Reply != "" {
				_ = m.RespondMsg(errorReply(&RemoteError{Name: "panic", Message: fmt.Sprint(p), Stack: string(debug.Stack())}))
			}
		}
	}()
	s.handler(m)
}

func (s *Subscription) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// stop ends deliveries at once and discards the queue.
func (s *Subscription) stop() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	q := s.q
	s.q, s.qBytes = nil, 0
	s.mu.Unlock()
	for _, m := range q {
		s.conn.endServe(m)
	}
	s.signal()
	if s.mode != modeOrdered {
		s.conn.wg.Go(func() { s.workers.Wait(); close(s.done) })
	}
}

// drain lets the queue empty, then stops.
func (s *Subscription) drain() {
	s.mu.Lock()
	s.draining = true
	empty := len(s.q) == 0
	s.mu.Unlock()
	s.signal()
	if s.mode == modeSync && empty || s.mode == modeConcurrent {
		if s.mode == modeConcurrent {
			s.conn.wg.Go(func() {
				s.workers.Wait()
				s.stop()
			})
			return
		}
		s.stop()
	}
}

func (s *Subscription) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// wait blocks until the subscription has stopped and its handlers returned.
func (s *Subscription) wait() { <-s.done }

// Next returns the next message of a pull subscription, waiting until one
// arrives or ctx ends. It returns ErrClosed once the subscription is over.
func (s *Subscription) Next(ctx context.Context) (*Msg, error) {
	if s.mode != modeSync {
		return nil, fmt.Errorf("ipc: Next on a subscription with a handler")
	}
	for {
		s.mu.Lock()
		if len(s.q) > 0 {
			m := s.q[0]
			s.q[0] = nil
			s.q = s.q[1:]
			s.qBytes -= m.Size()
			drained := s.draining && len(s.q) == 0
			s.mu.Unlock()
			if drained {
				s.stop()
			}
			s.delivered.Add(1)
			return m, nil
		}
		closed := s.closed || s.draining
		s.mu.Unlock()
		if closed {
			s.stop()
			return nil, ErrClosed
		}
		select {
		case <-s.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Messages yields the messages of a pull subscription until ctx ends or
// the subscription is over; a failure other than the end is yielded last.
func (s *Subscription) Messages(ctx context.Context) iter.Seq2[*Msg, error] {
	return func(yield func(*Msg, error) bool) {
		for {
			m, err := s.Next(ctx)
			if err == ErrClosed {
				return
			}
			if !yield(m, err) || err != nil {
				return
			}
		}
	}
}

// dropped records messages the server dropped for sid.
func (c *Conn) dropped(sid uint32, n int) {
	c.mu.Lock()
	s := c.subs[sid]
	c.mu.Unlock()
	if s != nil {
		s.drop(nil, n, true)
	}
}
