package transport

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// PipeBufferSize is how many bytes each direction of a [Pipe] holds before a
// Write blocks.
const PipeBufferSize = 256 << 10

// Pipe returns the two ends of an in-memory, full-duplex connection, for
// tests and benchmarks. Unlike [net.Pipe] it buffers: a Write copies its
// bytes into the peer's receive buffer ([PipeBufferSize] per direction) and
// returns without waiting for a Read; it blocks only while that buffer is
// full. Pipe starts no goroutines.
//
// Each end is safe for concurrent use, and concurrent Writes are not
// interleaved. The ends behave like connected stream sockets:
//   - Both ends also implement CloseWrite() error, which shuts down the
//     sending direction: the peer reads what was written, then io.EOF.
//   - Close shuts down both directions and discards unread input. The peer
//     reads the rest of what was written, then io.EOF; its Writes fail with
//     an error wrapping syscall.EPIPE. Close is idempotent and returns nil.
//   - Reads, Writes and deadline changes on a closed end fail with an error
//     wrapping [net.ErrClosed]; Writes after CloseWrite wrap syscall.EPIPE.
//   - Read, write and combined deadlines work as for [net.Conn]: a call
//     blocked past its deadline, or made after it, fails with an error
//     wrapping [os.ErrDeadlineExceeded]. Deadline timers are [time.AfterFunc]
//     timers, stopped by Close.
//
// LocalAddr and RemoteAddr return an address whose Network and String are
// both "pipe".
func Pipe() (a, b net.Conn) {
	ab, ba := newPipeBuf(), newPipeBuf()
	return &pipeConn{r: ba, w: ab}, &pipeConn{r: ab, w: ba}
}

// pipeConn is one end of a Pipe: it reads from r and writes to w, which are
// the peer's w and r.
type pipeConn struct {
	r, w *pipeBuf
}

// pipeBuf is one direction of a Pipe: a ring buffer with one writing end and
// one reading end.
type pipeBuf struct {
	wmu sync.Mutex // held across a whole Write so concurrent Writes do not interleave; taken before mu

	mu       sync.Mutex // guards every field below
	readable sync.Cond  // signalled when data arrives or the state changes; readers wait
	writable sync.Cond  // signalled when space frees or the state changes; the writer waits
	buf      []byte     // grows up to PipeBufferSize; nil after the reader closed
	off, n   int        // the unread bytes are buf[off:off+n], wrapping around
	wclosed  bool       // writing end shut down (CloseWrite or Close): reads drain, then io.EOF
	wgone    bool       // writing end closed: its Writes fail with net.ErrClosed
	rgone    bool       // reading end closed: its Reads fail with net.ErrClosed, Writes with EPIPE
	rdl, wdl deadline   // the reading end's read deadline and the writing end's write deadline
}

// deadline is one deadline of a pipeBuf, guarded by the pipeBuf's mu.
type deadline struct {
	timer   *time.Timer // pending expiry, or nil
	gen     uint64      // bumped on every change, so a stale timer callback does nothing
	expired bool
}

func newPipeBuf() *pipeBuf {
	b := new(pipeBuf)
	b.readable.L = &b.mu
	b.writable.L = &b.mu
	return b
}

func (c *pipeConn) Read(p []byte) (int, error) {
	b := c.r
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		switch {
		case b.rgone:
			return 0, c.opError("read", net.ErrClosed)
		case b.rdl.expired:
			return 0, c.opError("read", os.ErrDeadlineExceeded)
		case b.n > 0:
			k := b.getLocked(p)
			b.writable.Signal()
			if b.n > 0 {
				b.readable.Signal() // pass the rest on to another waiting reader
			}
			return k, nil
		case b.wclosed:
			return 0, io.EOF
		case len(p) == 0:
			return 0, nil
		}
		b.readable.Wait()
	}
}

func (c *pipeConn) Write(p []byte) (int, error) {
	b := c.w
	b.wmu.Lock()
	defer b.wmu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for {
		if err := b.writeErrLocked(); err != nil {
			return n, c.opError("write", err)
		}
		k := b.putLocked(p)
		n += k
		p = p[k:]
		if k > 0 {
			b.readable.Signal()
		}
		if len(p) == 0 {
			return n, nil
		}
		b.writable.Wait() // the buffer is full
	}
}

// writeErrLocked returns why the writing end cannot write now, or nil.
func (b *pipeBuf) writeErrLocked() error {
	switch {
	case b.wgone:
		return net.ErrClosed
	case b.wdl.expired:
		return os.ErrDeadlineExceeded
	case b.wclosed, b.rgone:
		return syscall.EPIPE
	}
	return nil
}

// putLocked copies as much of p as fits into the buffer, growing it if
// needed, and returns how many bytes it copied.
func (b *pipeBuf) putLocked(p []byte) int {
	if len(b.buf)-b.n < len(p) && len(b.buf) < PipeBufferSize {
		b.growLocked(b.n + len(p))
	}
	k := min(len(p), len(b.buf)-b.n)
	if k == 0 {
		return 0
	}
	tail := b.off + b.n
	if tail >= len(b.buf) {
		tail -= len(b.buf)
	}
	m := copy(b.buf[tail:], p[:k])
	copy(b.buf, p[m:k])
	b.n += k
	return k
}

// growLocked reallocates the buffer to hold at least want bytes, up to
// PipeBufferSize. Buffers start small so that idle pipes stay cheap.
func (b *pipeBuf) growLocked(want int) {
	size := max(2*len(b.buf), 4<<10)
	for size < want && size < PipeBufferSize {
		size *= 2
	}
	size = min(size, PipeBufferSize)
	nb := make([]byte, size)
	first := copy(nb[:b.n], b.buf[b.off:])
	copy(nb[first:b.n], b.buf)
	b.buf, b.off = nb, 0
}

// getLocked moves up to len(p) buffered bytes into p.
func (b *pipeBuf) getLocked(p []byte) int {
	k := min(len(p), b.n)
	first := copy(p[:k], b.buf[b.off:])
	copy(p[first:k], b.buf)
	b.off += k
	if b.off >= len(b.buf) {
		b.off -= len(b.buf)
	}
	b.n -= k
	if b.n == 0 {
		b.off = 0
	}
	return k
}

// Close shuts down both directions. It never blocks and always returns nil.
func (c *pipeConn) Close() error {
	c.r.closeReader()
	c.w.closeWriter(true)
	return nil
}

// CloseWrite shuts down the sending direction: the peer reads the rest of
// the buffered bytes, then io.EOF.
func (c *pipeConn) CloseWrite() error {
	if !c.w.closeWriter(false) {
		return c.opError("close", net.ErrClosed)
	}
	return nil
}

func (b *pipeBuf) closeReader() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rgone = true
	b.buf, b.off, b.n = nil, 0, 0
	b.rdl.stopLocked()
	b.readable.Broadcast()
	b.writable.Broadcast()
}

// closeWriter shuts down the writing end, closing it too if gone is set. It
// reports false if the end was already closed.
func (b *pipeBuf) closeWriter(gone bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wgone {
		return false
	}
	b.wclosed = true
	if gone {
		b.wgone = true
		b.wdl.stopLocked()
	}
	b.readable.Broadcast()
	b.writable.Broadcast()
	return true
}

func (c *pipeConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.SetWriteDeadline(t)
}

func (c *pipeConn) SetReadDeadline(t time.Time) error {
	b := c.r
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rgone {
		return c.opError("set", net.ErrClosed)
	}
	b.rdl.setLocked(b, &b.readable, t)
	return nil
}

func (c *pipeConn) SetWriteDeadline(t time.Time) error {
	b := c.w
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.wgone {
		return c.opError("set", net.ErrClosed)
	}
	b.wdl.setLocked(b, &b.writable, t)
	return nil
}

// setLocked replaces the deadline with t (zero means none) and wakes the
// waiters on cond when it passes. b.mu must be held.
func (d *deadline) setLocked(b *pipeBuf, cond *sync.Cond, t time.Time) {
	d.stopLocked()
	if t.IsZero() {
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		d.expired = true
		cond.Broadcast()
		return
	}
	gen := d.gen
	d.timer = time.AfterFunc(wait, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if d.gen == gen {
			d.expired = true
			cond.Broadcast()
		}
	})
}

// stopLocked clears the deadline and disarms its timer.
func (d *deadline) stopLocked() {
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.gen++
	d.expired = false
}

func (c *pipeConn) LocalAddr() net.Addr  { return pipeAddr{} }
func (c *pipeConn) RemoteAddr() net.Addr { return pipeAddr{} }

func (c *pipeConn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "pipe", Source: pipeAddr{}, Addr: pipeAddr{}, Err: err}
}

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }
