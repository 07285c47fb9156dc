package ipc

import (
	"encoding/binary"
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
//
// Frames are copied into a list of pooled fixed-size chunks and written
// with one vectored write, so a queue that grows (a slow subscriber) is
// never copied again, and its memory returns to the pool as it drains.
type outbox struct {
	w     io.Writer
	try   func([][]byte) (int, error) // one non-blocking vectored write; nil without a descriptor
	onErr func(error)                 // the connection failed; called once, without locks held

	mu      sync.Mutex
	cond    sync.Cond // signalled when the queue shrinks or the outbox fails; uses mu
	chunks  []*[]byte // queued bytes, oldest first; (*chunks[0])[head:] is the first unwritten; guarded by mu
	head    int       // guarded by mu
	pending int       // unwritten bytes; guarded by mu
	// frontLeft is how much of the frame at the front is still unwritten
	// when a part of it was written (0: the front is a frame's start); guarded by mu
	frontLeft int
	writing   bool  // a goroutine is writing from chunks; guarded by mu
	err       error // the first write error; guarded by mu
	closed    bool  // guarded by mu

	low     chan struct{} // closed when pending falls to lowMark; guarded by mu
	lowMark int           // guarded by mu

	iov  [][]byte    // the batch being written; owned by the writing goroutine
	bufs net.Buffers // the same, for a blocking write; owned by the writing goroutine
	kick chan struct{}
}

// chunkSize is the size of the outbox's buffers. Larger frames span chunks.
const chunkSize = 64 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, 0, chunkSize); return &b }}

// maxIOV bounds the buffers of one vectored write (IOV_MAX is 1024).
const maxIOV = 1024

func newOutbox(w io.Writer, onErr func(error)) *outbox {
	o := &outbox{w: w, onErr: onErr, kick: make(chan struct{}, 1)}
	o.cond.L = &o.mu
	if nc, ok := w.(net.Conn); ok {
		o.try = tryWriter(nc)
	}
	return o
}

// appendLocked queues p (caller holds mu).
func (o *outbox) appendLocked(p []byte) {
	o.pending += len(p)
	for len(p) > 0 {
		var tail *[]byte
		if n := len(o.chunks); n > 0 && len(*o.chunks[n-1]) < cap(*o.chunks[n-1]) {
			tail = o.chunks[n-1]
		} else {
			tail = chunkPool.Get().(*[]byte)
			o.chunks = append(o.chunks, tail)
		}
		k := min(len(p), cap(*tail)-len(*tail))
		*tail = append(*tail, p[:k]...)
		p = p[k:]
	}
}

// addLocked appends one frame; the caller holds mu.
func (o *outbox) addLocked(op uint16, flags wire.Flags, id uint32, payload []byte) {
	var h [wire.HeaderSize]byte
	wire.Header{Method: op, Flags: flags, ID: id, Len: uint32(len(payload))}.Put(h[:])
	o.appendLocked(h[:])
	o.appendLocked(payload)
}

var prefixPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// addMsgLocked appends a PUB or MSG frame carrying m: its header and
// message fields are encoded in a scratch buffer, its data copied once.
func (o *outbox) addMsgLocked(op uint16, flags wire.Flags, id uint32, m *Msg) {
	bp := prefixPool.Get().(*[]byte)
	b := wire.Header{Method: op, Flags: flags, ID: id}.Append((*bp)[:0])
	b = appendMsgHead(b, m)
	binary.BigEndian.PutUint32(b[7:11], uint32(len(b)-wire.HeaderSize+len(m.Data)))
	o.appendLocked(b)
	o.appendLocked(m.Data)
	if cap(b) <= 64<<10 {
		*bp = b
		prefixPool.Put(bp)
	}
}

// pendingLocked returns the bytes waiting to be written.
func (o *outbox) pendingLocked() int { return o.pending }

// takeLocked removes and returns the unwritten frames (when the
// connection is gone and nobody writes any more): a frame of which a part
// was written is dropped, so what is returned starts at a frame boundary.
func (o *outbox) takeLocked() []byte {
	skip := o.frontLeft
	o.frontLeft = 0
	out := make([]byte, 0, o.pending)
	for i, c := range o.chunks {
		if i == 0 {
			out = append(out, (*c)[o.head:]...)
		} else {
			out = append(out, *c...)
		}
		if !o.writing { // else a write still reads them: the GC takes them
			o.recycle(c)
		}
	}
	o.chunks, o.head, o.pending = nil, 0, 0
	return out[min(skip, len(out)):]
}

func (o *outbox) recycle(c *[]byte) {
	*c = (*c)[:0]
	chunkPool.Put(c)
}

// batchLocked gathers the unwritten bytes into o.iov (up to maxIOV
// buffers). Appends made while they are written go after them and never
// touch them.
func (o *outbox) batchLocked() [][]byte {
	o.iov = o.iov[:0]
	for i, c := range o.chunks {
		if len(o.iov) == maxIOV {
			break
		}
		b := *c
		if i == 0 {
			b = b[o.head:]
		}
		if len(b) > 0 {
			o.iov = append(o.iov, b[:len(b):len(b)])
		}
	}
	return o.iov
}

// advanceLocked drops n written bytes from the front, returning fully
// written chunks to the pool (the last one stays, to be filled further).
func (o *outbox) advanceLocked(n int) {
	if len(o.chunks) == 0 {
		return // taken while they were written: the connection is gone
	}
	// Follow the frame boundaries, so that what is left after a broken
	// connection can be cut at the first whole frame (takeLocked).
	for n > 0 {
		if o.frontLeft == 0 {
			var h [wire.HeaderSize]byte
			o.peekLocked(h[:])
			hdr, _ := wire.ParseHeader(h[:])
			o.frontLeft = wire.HeaderSize + int(hdr.Len)
		}
		k := min(n, o.frontLeft)
		o.frontLeft -= k
		n -= k
		o.consumeLocked(k)
	}
	o.consumeLocked(0)
}

// peekLocked copies the first unwritten bytes into b.
func (o *outbox) peekLocked(b []byte) {
	off := o.head
	for _, c := range o.chunks {
		k := copy(b, (*c)[off:])
		b, off = b[k:], 0
		if len(b) == 0 {
			return
		}
	}
}

// consumeLocked drops n written bytes from the front.
func (o *outbox) consumeLocked(n int) {
	o.pending -= n
	if o.low != nil && o.pending <= o.lowMark {
		close(o.low)
		o.low = nil
	}
	for n > 0 || len(o.chunks) > 0 && o.head == len(*o.chunks[0]) {
		c := o.chunks[0]
		left := len(*c) - o.head
		if n < left {
			o.head += n
			return
		}
		n -= left
		if len(o.chunks) == 1 { // the tail: reuse it from the start
			*c = (*c)[:0]
			o.head = 0
			return
		}
		o.chunks[0] = nil
		o.chunks = o.chunks[1:]
		o.head = 0
		o.recycle(c)
	}
}

// flush writes what is waiting. With wait false it writes only as much as
// the socket takes without blocking and leaves the rest to the writer
// goroutine; with wait true it writes everything (blocking). Either way it
// returns at once if another goroutine is writing: that one goes on.
func (o *outbox) flush(wait bool) {
	o.mu.Lock()
	if o.writing || o.pending == 0 || o.err != nil {
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
	for o.pending > 0 && o.err == nil {
		iov := o.batchLocked()
		total := 0
		for _, b := range iov {
			total += len(b)
		}
		o.mu.Unlock()
		var n int
		var err error
		if wait {
			o.bufs = iov
			var n64 int64
			n64, err = o.bufs.WriteTo(o.w)
			n = int(n64)
			o.bufs = nil
		} else {
			n, err = o.try(iov)
		}
		o.mu.Lock()
		o.advanceLocked(n)
		o.cond.Broadcast()
		if err != nil {
			o.err, failed = err, err
			break
		}
		if n < total { // the socket is full: the writer goroutine goes on
			o.writing = false
			o.cond.Broadcast()
			o.mu.Unlock()
			o.wake()
			return
		}
	}
	o.writing = false
	o.cond.Broadcast()
	o.mu.Unlock()
	if failed != nil && o.onErr != nil {
		o.onErr(failed)
	}
}

// flushAll writes everything queued, blocking, and returns once it has
// been handed to the socket, the outbox failed or it closed: unlike flush,
// it waits for a write another goroutine has under way (a reader's
// non-blocking flush that the connection's end would cut short). Set a
// write deadline first: the writer goroutine may be blocked on a full
// socket.
func (o *outbox) flushAll() {
	o.mu.Lock()
	for o.pending > 0 && o.err == nil && !o.closed {
		if o.writing {
			o.cond.Wait()
			continue
		}
		o.mu.Unlock()
		o.flush(true)
		o.mu.Lock()
	}
	o.mu.Unlock()
}

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
	for o.pending > limit && o.err == nil && !o.closed {
		o.cond.Wait()
	}
	if o.closed {
		return ErrClosed
	}
	return o.err
}

// drained returns a channel closed once at most mark bytes wait (or the
// outbox closes); nil when that is already so.
func (o *outbox) drained(mark int) <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending <= mark || o.closed {
		return nil
	}
	if o.low == nil || mark < o.lowMark {
		if o.low != nil {
			close(o.low)
		}
		o.low, o.lowMark = make(chan struct{}), mark
	}
	return o.low
}

// close fails waiting producers.
func (o *outbox) close() {
	o.mu.Lock()
	if o.low != nil {
		close(o.low)
		o.low = nil
	}
	o.closed = true
	o.cond.Broadcast()
	o.mu.Unlock()
}
