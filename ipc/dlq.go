package ipc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/procxy/procxy/internal/backoff"
)

// Reason says why a message became a dead letter.
type Reason string

// Reasons for dead letters.
const (
	ReasonNoSubscribers Reason = "no_subscribers" // a PublishSync reached nobody
	ReasonSlowConsumer  Reason = "slow_consumer"  // a full subscription queue dropped it
	ReasonHandlerFailed Reason = "handler_failed" // a Retry handler failed every attempt
	ReasonExpired       Reason = "expired"        // it arrived after its Expires time
)

// Headers of the messages published on the dead-letter subjects
// ($IPC.DLQ.<reason>): the message's own headers and data, plus these.
const (
	HeaderDLQSubject = "Dlq-Subject" // the subject it was sent to
	HeaderDLQReason  = "Dlq-Reason"
	HeaderDLQError   = "Dlq-Error"
)

// DeadLetter is a message that could not be delivered or handled.
type DeadLetter struct {
	Seq    uint64 // order of arrival in this queue, from 1
	Msg    *Msg   // the message as it was published (Subject, Reply, Header, Data)
	Reason Reason
	Err    error // what went wrong
	Time   time.Time
}

// DeadLetterQueue keeps a connection's most recent dead letters (see
// [DeadLetters]); the oldest is dropped when it is full. Every dead letter
// is also published on the subject $IPC.DLQ.<reason>, so another process
// can collect them. It is safe for concurrent use.
type DeadLetterQueue struct {
	conn *Conn
	max  int

	mu      sync.Mutex
	items   []DeadLetter // oldest first; guarded by mu
	seq     uint64       // guarded by mu
	evicted uint64       // guarded by mu
}

func newDeadLetterQueue(c *Conn, max int) *DeadLetterQueue {
	return &DeadLetterQueue{conn: c, max: max}
}

// DeadLetters returns the connection's dead-letter queue, or nil when it
// is turned off.
func (c *Conn) DeadLetters() *DeadLetterQueue { return c.dlq }

// deadLetter records a message that could not be delivered or handled.
func (c *Conn) deadLetter(m *Msg, r Reason, err error) {
	c.stats.dead.Add(1)
	if c.dlq == nil || isReserved(m.Subject) {
		return
	}
	cp := &Msg{Subject: m.Subject, Reply: m.Reply, Header: m.Header, Data: m.Data, Expires: m.Expires}
	c.dlq.add(DeadLetter{Msg: cp, Reason: r, Err: err, Time: time.Now()})
	h := make(Header, len(m.Header)+3)
	for k, v := range m.Header {
		h[k] = v
	}
	h.Set(HeaderDLQSubject, m.Subject)
	h.Set(HeaderDLQReason, string(r))
	if err != nil {
		h.Set(HeaderDLQError, err.Error())
	}
	if perr := c.publish(&Msg{Subject: subjectDLQ + "." + string(r), Header: h, Data: m.Data}, 0); perr != nil {
		c.log.Debug("ipc: cannot publish a dead letter", "err", perr)
	}
}

func (q *DeadLetterQueue) add(d DeadLetter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.seq++
	d.Seq = q.seq
	if len(q.items) >= q.max {
		copy(q.items, q.items[1:])
		q.items = q.items[:len(q.items)-1]
		q.evicted++
	}
	q.items = append(q.items, d)
}

// List returns the dead letters kept, oldest first.
func (q *DeadLetterQueue) List() []DeadLetter {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]DeadLetter(nil), q.items...)
}

// Len returns how many dead letters are kept.
func (q *DeadLetterQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Evicted returns how many dead letters were dropped because the queue was full.
func (q *DeadLetterQueue) Evicted() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.evicted
}

// Replay publishes again, with PublishSync, every kept dead letter for
// which keep returns true (nil: all), oldest first, and removes those that
// were delivered. It returns how many were; one that fails again stays in
// the queue (and is not recorded twice).
func (q *DeadLetterQueue) Replay(ctx context.Context, keep func(DeadLetter) bool) (int, error) {
	var n int
	var errs []error
	for _, d := range q.List() {
		if keep != nil && !keep(d) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m := &Msg{Subject: d.Msg.Subject, Reply: d.Msg.Reply, Header: d.Msg.Header, Data: d.Msg.Data}
		if err := q.conn.checkPublish(m); err != nil {
			errs = append(errs, fmt.Errorf("dead letter %d: %w", d.Seq, err))
			continue
		}
		if err := q.conn.tr.PublishSync(ctx, m); err != nil {
			errs = append(errs, fmt.Errorf("dead letter %d: %w", d.Seq, err))
			continue
		}
		q.Remove(d.Seq)
		n++
	}
	return n, errors.Join(errs...)
}

// Remove drops the dead letter with sequence number seq.
func (q *DeadLetterQueue) Remove(seq uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, d := range q.items {
		if d.Seq == seq {
			q.items = append(q.items[:i], q.items[i+1:]...)
			return
		}
	}
}

// Clear drops every dead letter.
func (q *DeadLetterQueue) Clear() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.items = nil
}

// retryBackoff is Retry's wait between attempts: 10 ms doubling up to 1 s,
// ±20 %.
var retryBackoff = backoff.Exponential{Base: 10 * time.Millisecond, Max: time.Second, Jitter: 0.2}

// Retry wraps a handler that can fail: h runs up to attempts times (with
// backoff doubling from 10 ms), and a message it fails on every time goes
// to the dead-letter queue with ReasonHandlerFailed. If the message expects
// a reply, the last error is sent back as the response.
func Retry(attempts int, h func(*Msg) error) MsgHandler {
	return func(m *Msg) {
		var err error
		for i := 1; i <= attempts; i++ {
			if err = h(m); err == nil {
				return
			}
			if i < attempts && backoff.Sleep(m.Context(), retryBackoff.Delay(i, backoff.Jitter())) != nil {
				break
			}
		}
		if m.conn != nil {
			m.conn.deadLetter(m, ReasonHandlerFailed, err)
			if m.Reply != "" {
				_ = m.RespondMsg(errorReply(err))
			}
		}
	}
}
