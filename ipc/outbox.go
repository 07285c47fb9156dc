package ipc

import (
	"io"
	"net"
	"sync"

	"github.com/procxy/procxy/rpc/wire"
)

// outbox collects the frames going to one connection and writes them in
// batches: many small messages cost one system call. Whoever finds the
// socket idle writes (flush); a writer goroutine takes over when a write
// would block, so a caller that must not wait (the server routing a
// message) never does.
type outbox struct {
	w     io.Writer
	try   func([]byte) (int, error) // one non-blocking write; nil when the connection has no descriptor
	onErr func(error)               // the connection failed; called once, without locks held

	mu      sync.Mutex
	cond    sync.Cond // signalled when buf shrinks or the outbox fails; uses mu
	buf     []byte    // frames waiting; guarded by mu
	spare   []byte    // a written batch kept for reuse; guarded by mu
	writing bool      // a goroutine owns the socket for writing; guarded by mu
	err     error     // the first write error; guarded by mu
	closed  bool      // guarded by mu

	kick chan struct{} // wakes the writer goroutine
}

func newOutbox(w io.Writer, onErr func(error)) *outbox {
	o := &outbox{w: w, onErr: onErr, kick: make(chan struct{}, 1)}
	o.cond.L = &o.mu
	if nc, ok := w.(net.Conn); ok {
		o.try = tryWriter(nc)
	}
	return o
}

// add appends one frame; the caller holds mu.
func (o *outbox) addLocked(op uint16, flags wire.Flags, id uint32, payload []byte) {
	o.buf = wire.Header{Method: op, Flags: flags, ID: id, Len: uint32(len(payload))}.Append(o.buf)
	o.buf = append(o.buf, payload...)
}

// addMsgLocked appends a PUB or MSG frame carrying m, encoded in place.
func (o *outbox) addMsgLocked(op uint16, flags wire.Flags, id uint32, m *Msg) {
	at := len(o.buf)
	o.buf = wire.Header{Method: op, Flags: flags, ID: id}.Append(o.buf)
	o.buf = appendMsg(o.buf, m)
	n := len(o.buf) - at - wire.HeaderSize
	h := wire.Header{Method: op, Flags: flags, ID: id, Len: uint32(n)}
	h.Put(o.buf[at:])
}

// pending returns the bytes waiting.
func (o *outbox) pendingLocked() int { return len(o.buf) }

// flush writes what is waiting. With wait false it writes only as much as
// the socket takes without blocking and leaves the rest to the writer
// goroutine; with wait true it writes everything (blocking).
func (o *outbox) flush(wait bool) {
	o.mu.Lock()
	if o.writing || len(o.buf) == 0 || o.err != nil {
		o.mu.Unlock()
		return
	}
	if !wait && o.try == nil {
		o.mu.Unlock()
		o.wake()
		return
	}
	o.writing = true
	var failed error
	for len(o.buf) > 0 && o.err == nil {
		b := o.buf
		o.buf, o.spare = o.spare[:0], nil
		o.mu.Unlock()
		var n int
		var err error
		if wait {
			n, err = o.w.Write(b)
		} else {
			n, err = o.try(b)
		}
		o.mu.Lock()
		if err != nil {
			o.err, failed = err, err
			break
		}
		if n < len(b) { // the socket is full: the writer goroutine goes on
			nb := make([]byte, 0, len(b)-n+len(o.buf))
			nb = append(append(nb, b[n:]...), o.buf...)
			o.buf = nb
			o.writing = false
			o.cond.Broadcast()
			o.mu.Unlock()
			o.wake()
			return
		}
		if cap(b) <= maxSpare {
			o.spare = b[:0]
		}
		o.cond.Broadcast()
	}
	o.writing = false
	o.cond.Broadcast()
	o.mu.Unlock()
	if failed != nil && o.onErr != nil {
		o.onErr(failed)
	}
}

// maxSpare bounds the batch buffer kept between writes.
const maxSpare = 1 << 20

// wake asks the writer goroutine to flush.
func (o *outbox) wake() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

// writer is the outbox's writer goroutine: it flushes, blocking, whenever
// it is woken, until done is closed.
func (o *outbox) writer(done <-chan struct{}) {
	for {
		select {
		case <-o.kick:
			o.flush(true)
		case <-done:
			return
		}
	}
}

// waitBelowLocked waits (holding mu) until at most limit bytes wait, the
// outbox fails or it closes.
func (o *outbox) waitBelowLocked(limit int) error {
	for len(o.buf) > limit && o.err == nil && !o.closed {
		o.cond.Wait()
	}
	if o.closed {
		return ErrClosed
	}
	return o.err
}

// close fails waiting producers.
func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.cond.Broadcast()
	o.mu.Unlock()
}
