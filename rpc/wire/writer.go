package wire

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// copyLimit is the largest payload copied into the shared batch buffer; larger
// payloads are written from the caller's slice by a vectored write.
const copyLimit = 16 << 10

// maxBatch caps how many bytes one flush copies together before writing.
const maxBatch = 256 << 10

// ErrPayloadOverflow is returned for a payload that does not fit the 31-bit
// length the protocol allows.
var ErrPayloadOverflow = errors.New("wire: payload exceeds 2147483647 bytes")

// Writer writes frames to an io.Writer. It is safe for concurrent use: each
// frame's header and payload are written contiguously, and frames that
// goroutines submit while a write is in progress are gathered and written
// together by the next write (one writev for many frames).
//
// WriteFrame returns once its frame has been handed to the underlying writer,
// so the caller may reuse the payload and blocking writes give natural
// backpressure. After a write error every later call returns that error.
type Writer struct {
	w io.Writer

	mu       sync.Mutex
	cond     sync.Cond // signalled when a batch is flushed; uses mu
	pending  *batch    // frames waiting for the next flush; guarded by mu
	spare    *batch    // a flushed batch kept for reuse; guarded by mu
	flushing bool      // a goroutine is writing; guarded by mu
	queued   uint64    // number of the batch that pending will become; guarded by mu
	flushed  uint64    // number of the last batch written; guarded by mu
	err      error     // sticky write error; guarded by mu
	// queuedAny: Queue added a frame that no flush has taken yet; guarded by mu
	queuedAny bool
}

type segment struct {
	from, to int    // range of batch.buf, if ext is nil
	ext      []byte // a caller's payload written in place
}

type batch struct {
	buf  []byte
	segs []segment
	iov  net.Buffers
}

func (b *batch) reset() {
	b.buf = b.buf[:0]
	clear(b.segs) // drop references to callers' payloads
	b.segs = b.segs[:0]
	clear(b.iov)
	b.iov = b.iov[:0]
}

// add appends one frame to the batch: its payload is payload followed by
// parts.
func (b *batch) add(h Header, payload []byte, parts [][]byte) {
	from := len(b.buf)
	b.buf = h.Append(b.buf)
	from = b.addPart(from, payload)
	for _, p := range parts {
		from = b.addPart(from, p)
	}
	b.extend(from, len(b.buf))
}

// addFill appends a frame whose n-byte payload fill writes in place.
func (b *batch) addFill(h Header, n int, fill func([]byte)) {
	from := len(b.buf)
	b.buf = h.Append(b.buf)
	at := len(b.buf)
	b.buf = append(b.buf, make([]byte, n)...)
	fill(b.buf[at:])
	b.extend(from, len(b.buf))
}

// addPart copies p into the batch buffer if it is small, or adds it as a
// segment of its own; from is where the buffer's pending bytes start.
func (b *batch) addPart(from int, p []byte) int {
	if len(p) <= copyLimit {
		b.buf = append(b.buf, p...)
		return from
	}
	b.extend(from, len(b.buf))
	b.segs = append(b.segs, segment{ext: p})
	return len(b.buf)
}

// extend adds buf[from:to] as a segment, merging it with the previous one
// when they are adjacent.
func (b *batch) extend(from, to int) {
	if from == to {
		return
	}
	if n := len(b.segs); n > 0 && b.segs[n-1].ext == nil && b.segs[n-1].to == from {
		b.segs[n-1].to = to
		return
	}
	b.segs = append(b.segs, segment{from: from, to: to})
}

func (b *batch) writeTo(w io.Writer) error {
	if len(b.segs) == 1 && b.segs[0].ext == nil {
		_, err := w.Write(b.buf[b.segs[0].from:b.segs[0].to])
		return err
	}
	for _, s := range b.segs {
		if s.ext != nil {
			b.iov = append(b.iov, s.ext)
		} else {
			b.iov = append(b.iov, b.buf[s.from:s.to])
		}
	}
	iov := b.iov // WriteTo consumes its receiver; keep b.iov's backing array
	_, err := iov.WriteTo(w)
	return err
}

// NewWriter returns a Writer that writes to w. When w is a *net.UnixConn or
// *net.TCPConn, frames with large payloads go out with one writev.
func NewWriter(w io.Writer) *Writer {
	fw := &Writer{w: w, pending: new(batch), spare: new(batch), queued: 1}
	fw.cond.L = &fw.mu
	return fw
}

// WriteFrame writes one frame; h.Len is set from len(payload).
func (w *Writer) WriteFrame(h Header, payload []byte) error {
	return w.writeFrame(h, payload, nil)
}

// WriteFrameVec writes one frame whose payload is parts in order; h.Len is
// set from their total length. Large parts are written from where they are
// (one writev for the frame), so the caller may keep the payload of a large
// value in its own memory and hand only a slice of it here.
func (w *Writer) WriteFrameVec(h Header, parts [][]byte) error {
	return w.writeFrame(h, nil, parts)
}

// WriteFrameFill writes one frame with an n-byte payload that fill writes
// into p, under the Writer's lock, at the moment the frame takes its place
// among the frames of concurrent writers: whatever fill numbers is in the
// order the frames go out. fill must be quick and must not write. It is
// not called if the Writer has already failed.
func (w *Writer) WriteFrameFill(h Header, n int, fill func(p []byte)) error {
	return w.writeFrameFill(h, nil, nil, n, fill)
}

func (w *Writer) writeFrame(h Header, payload []byte, parts [][]byte) error {
	return w.writeFrameFill(h, payload, parts, 0, nil)
}

func (w *Writer) writeFrameFill(h Header, payload []byte, parts [][]byte, fillN int, fill func([]byte)) error {
	n := len(payload) + fillN
	for _, p := range parts {
		n += len(p)
		if n > AbsoluteMaxPayload {
			break
		}
	}
	if n > AbsoluteMaxPayload {
		return ErrPayloadOverflow
	}
	h.Len = uint32(n)
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	for w.flushing && len(w.pending.buf) >= maxBatch {
		w.cond.Wait() // bound the memory a stalled peer can make us hold
		if w.err != nil {
			err := w.err
			w.mu.Unlock()
			return err
		}
	}
	if fill != nil {
		w.pending.addFill(h, fillN, fill)
	} else {
		w.pending.add(h, payload, parts)
	}
	mine := w.queued
	if w.flushing {
		for w.flushed < mine && w.err == nil {
			w.cond.Wait()
		}
		err := w.err
		if w.flushed >= mine {
			err = nil // our batch went out before the failure
		}
		w.mu.Unlock()
		return err
	}
	return w.flushLocked(mine)
}

// flushLocked writes batches until none is pending; w.mu is held on entry
// and released on return. It reports the write error only if the batch
// numbered mine did not go out.
func (w *Writer) flushLocked(mine uint64) error {
	w.flushing = true
	w.queuedAny = false
	for len(w.pending.segs) > 0 && w.err == nil {
		b := w.pending
		w.pending, w.spare = w.spare, nil
		n := w.queued
		w.queued++
		w.mu.Unlock()

		err := b.writeTo(w.w)
		b.reset()

		w.mu.Lock()
		w.spare = b
		if err != nil {
			w.err = fmt.Errorf("wire: write: %w", err)
		} else {
			w.flushed = n
		}
		w.cond.Broadcast()
	}
	w.flushing = false
	w.queuedAny = false // everything queued went out with the batches above
	err := w.err
	if w.flushed >= mine {
		err = nil
	}
	w.mu.Unlock()
	return err
}

// Queue adds one frame to the next write without writing it: the frame goes
// out with the next WriteFrame or Flush, or with a write already in progress
// on another goroutine. Queue never blocks on the underlying writer. The
// payload is copied, so the caller may reuse it at once. A connection that
// answers several buffered requests in a row queues all replies but the
// last, which it writes, so they share one system call; it must see to a
// Flush before it waits for more input, and bound what it queues
// (Buffered).
func (w *Writer) Queue(h Header, payload []byte) error {
	if len(payload) > AbsoluteMaxPayload {
		return ErrPayloadOverflow
	}
	h.Len = uint32(len(payload))
	w.mu.Lock()
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	from := len(w.pending.buf)
	w.pending.buf = append(h.Append(w.pending.buf), payload...)
	w.pending.extend(from, len(w.pending.buf))
	w.queuedAny = true
	w.mu.Unlock()
	return nil
}

// Buffered returns how many bytes of frames wait for the next write.
func (w *Writer) Buffered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending.buf)
}

// Flush writes the queued frames, unless a write in progress on another
// goroutine is about to take them. It returns at once when nothing is queued.
func (w *Writer) Flush() error {
	w.mu.Lock()
	if !w.queuedAny || w.flushing {
		err := w.err
		w.mu.Unlock()
		return err
	}
	return w.flushLocked(w.queued)
}

// Queued reports whether frames added with Queue are waiting for a write
// that nobody has started yet: only then does Flush have work to do.
func (w *Writer) Queued() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.queuedAny && !w.flushing
}

// Err returns the sticky write error, if any.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
