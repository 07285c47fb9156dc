package ipc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultWindow is how many chunks of a stream may be in flight to a
// receiver before the sender waits for credit. With chunks of at most the
// maximum payload, it bounds the memory a stream takes on either side.
const DefaultWindow = 32

// flow is one end of a flow-controlled exchange of messages — a streamed
// reply, an upload, or a channel — between two connections. Each end has
// its own reply subject (self, on its Conn's inbox) and sends everything
// (chunks, credit, ends, cancellations, signs of life) to the other end's
// (peer). A receiver grants credit in chunks: the sender never has more
// than the granted chunks in flight, so neither side buffers more than
// the window.
type flow struct {
	c     *Conn
	tok   uint64
	self  string
	flags Flags // FlagReply|FlagMore when this end answers a request
	ctx   context.Context

	mu        sync.Mutex
	peer      string          // guarded by mu
	credit    int             // chunks we may still send; guarded by mu
	seq       uint64          // the last chunk sent; guarded by mu
	sentCtl   bool            // the peer knows self; guarded by mu
	window    int             // the chunks we let the peer have in flight to us
	consumed  int             // chunks taken since the last credit sent; guarded by mu
	lastSeq   uint64          // the last chunk received; guarded by mu
	err       error           // why the flow ended for sending; guarded by mu
	lastSeen  time.Time       // the last message from the peer; guarded by mu
	overflow  bool            // the peer sent beyond its credit; guarded by mu
	lost      error           // the connection dropped; guarded by mu
	in        chan *Msg       // chunks, ends and status replies from the peer
	wake      chan struct{}   // for the sender: credit arrived or the flow ended
	alert     chan struct{}   // for the receiver: overflow or connection lost
	onGone    func(error)     // called (with Conn.mu held) when the peer ends, cancels or fails; set before use
	dead      <-chan struct{} // closed when the exchange is over for good (channels); nil: never
	closeOnce sync.Once
}

var errPeerCancelled = errors.New("ipc: the receiver cancelled the stream")

// newFlow registers a flow on c's inbox. ctx bounds its waits.
func (c *Conn) newFlow(ctx context.Context, window int) (*flow, error) {
	if window <= 0 {
		window = DefaultWindow
	}
	f := &flow{
		c: c, ctx: ctx, window: window,
		in:       make(chan *Msg, window+8),
		wake:     make(chan struct{}, 1),
		alert:    make(chan struct{}, 1),
		lastSeen: time.Now(),
	}
	self, tok, err := c.newReply(f)
	if err != nil {
		return nil, err
	}
	f.self, f.tok = self, tok
	if c.turns != nil {
		c.turns.need(1) // no requester reads what comes for a flow; finish undoes it
	}
	return f, nil
}

// deliverInbox takes a message from the peer (called with Conn.mu held;
// never blocks).
func (f *flow) deliverInbox(m *Msg) {
	f.mu.Lock()
	f.lastSeen = time.Now()
	if m.meta.ctl != "" && f.peer == "" {
		f.peer = m.meta.ctl
	}
	switch m.meta.kind {
	case kindCredit:
		f.credit += int(m.meta.credit)
		f.mu.Unlock()
		f.signal()
		return
	case kindGo:
		f.credit += int(m.meta.credit)
		f.mu.Unlock()
		f.signal()
		f.push(m)
		return
	case kindCancel:
		if f.err == nil {
			f.err = errPeerCancelled
		}
		gone := f.onGone
		f.mu.Unlock()
		f.signal()
		f.push(m)
		if gone != nil {
			gone(errPeerCancelled)
		}
		return
	case kindAlive:
		f.mu.Unlock()
		return
	}
	gone := f.onGone
	var why error // nil: the peer ended normally
	if m.meta.status != 0 {
		why = statusError(m)
		if f.err == nil {
			f.err = why // the sender cannot go on either
		}
	}
	f.mu.Unlock()
	// Queue the message before saying the peer is gone: a receiver woken
	// by the end must find what came with it.
	f.push(m)
	if gone != nil && (m.meta.status != 0 || m.meta.kind == kindEnd) {
		gone(why)
	}
	if m.meta.status != 0 {
		f.signal()
	}
}

// push queues a message for recv; a peer that sends beyond its credit
// breaks the flow.
func (f *flow) push(m *Msg) {
	select {
	case f.in <- m:
	default:
		f.mu.Lock()
		f.overflow = true
		f.mu.Unlock()
		f.signal()
	}
}

// signal wakes both a sender waiting for credit and a receiver waiting
// for an alert.
func (f *flow) signal() {
	select {
	case f.wake <- struct{}{}:
	default:
	}
	select {
	case f.alert <- struct{}{}:
	default:
	}
}

// ended returns why the flow cannot send, if it cannot.
func (f *flow) ended() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// send sends one chunk to the peer, waiting for credit.
func (f *flow) send(ctx context.Context, m *Msg) error {
	for {
		f.mu.Lock()
		if f.err != nil {
			err := f.err
			f.mu.Unlock()
			return err
		}
		if f.credit > 0 && f.peer != "" {
			f.credit--
			f.seq++
			m.meta.kind, m.meta.seq = kindChunk, f.seq
			if !f.sentCtl {
				m.meta.ctl, f.sentCtl = f.self, true
			}
			m.Subject = f.peer
			f.mu.Unlock()
			return f.c.publish(m, f.flags)
		}
		f.mu.Unlock()
		select {
		case <-f.wake:
		case <-ctx.Done():
			return ctx.Err()
		case <-f.ctx.Done():
			return f.ctx.Err()
		case <-f.dead:
			return errFlowDead
		}
	}
}

// errFlowDead is returned by send and recv once the exchange is over.
var errFlowDead = errors.New("ipc: exchange over")

// control sends a message without data (credit, end, cancel, go, alive).
func (f *flow) control(mt meta, fl Flags) error {
	f.mu.Lock()
	peer := f.peer
	if !f.sentCtl {
		mt.ctl, f.sentCtl = f.self, true
	}
	f.mu.Unlock()
	if peer == "" {
		return nil
	}
	return f.c.publish(&Msg{Subject: peer, meta: mt}, fl)
}

// recv returns the next message from the peer — a chunk, a go-ahead, or a
// plain reply — or errEnd at a normal end, the peer's error, ErrStreamLost
// on a gap, or ctx's error.
func (f *flow) recv(ctx context.Context) (*Msg, error) {
	for {
		var m *Msg
		select {
		case m = <-f.in:
		default:
			f.mu.Lock()
			overflow, lost := f.overflow, f.lost
			f.mu.Unlock()
			if overflow {
				return nil, fmt.Errorf("%w: the sender exceeded its credit", ErrProtocol)
			}
			if lost != nil {
				return nil, lost
			}
			select {
			case m = <-f.in:
			case <-f.alert:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-f.ctx.Done():
				return nil, f.ctx.Err()
			case <-f.dead:
				select {
				case m = <-f.in: // what arrived before the end comes first
				default:
					return nil, errFlowDead
				}
			}
		}
		switch {
		case m.meta.status != 0:
			return nil, statusError(m)
		case m.meta.kind == kindEnd:
			return nil, errEnd
		case m.meta.kind == kindCancel:
			return nil, errPeerCancelled
		case m.meta.kind == kindChunk:
			if err := f.took(m.meta.seq); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
}

// errEnd marks the normal end of a stream.
var errEnd = errors.New("ipc: end of stream")

// took checks a chunk's sequence number and returns credit to the peer
// once half the window has been taken.
func (f *flow) took(seq uint64) error {
	f.mu.Lock()
	if seq != f.lastSeq+1 {
		want := f.lastSeq + 1
		f.mu.Unlock()
		return fmt.Errorf("%w: got chunk %d, want %d", ErrStreamLost, seq, want)
	}
	f.lastSeq = seq
	f.consumed++
	var grant int
	if f.consumed >= max(f.window/2, 1) {
		grant, f.consumed = f.consumed, 0
	}
	f.mu.Unlock()
	if grant > 0 {
		return f.control(meta{kind: kindCredit, credit: uint32(grant)}, 0)
	}
	return nil
}

// finish stops the flow for sending and forgets it on the inbox.
func (f *flow) finish(err error) {
	f.closeOnce.Do(func() {
		f.mu.Lock()
		if f.err == nil {
			f.err = err
		}
		f.mu.Unlock()
		f.signal()
		f.c.removePending(f.tok, f)
		if f.c.turns != nil {
			f.c.turns.need(-1)
		}
	})
}

// fail is called when the connection drops.
func (f *flow) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.lost = err
	gone := f.onGone
	f.mu.Unlock()
	f.signal()
	if gone != nil {
		gone(err)
	}
}

// silentFor returns how long the peer has said nothing.
func (f *flow) silentFor() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Since(f.lastSeen)
}
