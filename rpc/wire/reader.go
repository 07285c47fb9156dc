package wire

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Frame is one decoded frame.
type Frame struct {
	Header
	// Payload holds Header.Len bytes. Unless Owned is set it aliases the
	// Reader's buffer and is valid only until the next ReadFrame call.
	Payload []byte
	// Owned reports that Payload was allocated for this frame alone (large
	// payloads are read straight into their own slice): the caller may keep it.
	Owned bool
	// Skipped is how many bytes at the start of the payload a destination
	// function set with SetDestAfter dropped; Payload holds the rest.
	Skipped int
}

// MaxHead is the most payload bytes a SetDestAfter function is shown.
const MaxHead = 16

const (
	// defaultReadBuffer is the Reader's buffer size; payloads that fit in it
	// are returned in place, larger ones get a slice of their own.
	defaultReadBuffer = 64 << 10
	// eagerAlloc is the largest payload allocated in full as soon as its
	// header arrives. Larger payloads grow with the data that actually
	// arrives, so a peer that lies about a length cannot make us allocate
	// more than twice what it really sent.
	eagerAlloc = 16 << 20
)

// Reader reads frames from an io.Reader, validating each header before it
// waits for or allocates the payload. It reads ahead in bulk, so several small
// frames usually cost one read system call.
//
// A read that fails because a deadline passed ([os.ErrDeadlineExceeded], as
// returned by net.Conn after SetReadDeadline) loses nothing: ReadFrame
// returns the error, and the next call continues the same frame where it
// stopped. That is how a goroutine blocked in ReadFrame is interrupted to
// hand reading to another one. Every other error is final.
//
// A Reader is not safe for concurrent use: one goroutine reads at a time.
type Reader struct {
	r       io.Reader
	max     int
	buf     []byte
	start   int // unread data is buf[start:end]
	end     int
	err     error // sticky: once a read or a header fails, every later call returns it
	dest    func(h Header, head []byte) (skip int, into []byte)
	allowed Flags // reserved flag bits accepted (Allow)
	grow    int   // the buffer may grow up to this size; 0: fixed

	// A frame whose header has been consumed but whose payload has not
	// fully arrived, after a read was interrupted by a deadline.
	part    bool
	hdr     Header
	decided bool   // a large frame's destination is chosen: large, skip
	large   []byte // the payload of a large frame (after skip), read so far up to got
	skip    int
	got     int
}

// SetDest sets a function asked where to put each payload too large for the
// Reader's buffer: it returns a slice of exactly h.Len bytes to read the
// payload into (the frame is then Owned and its Payload is that slice), or
// nil to let the Reader allocate one. It is called on the reading goroutine,
// after the header is validated.
func (r *Reader) SetDest(fn func(h Header) []byte) {
	r.dest = func(h Header, _ []byte) (int, []byte) { return 0, fn(h) }
}

// SetDestAfter is SetDest for payloads that start with a small header of
// their own, such as the header of a msgpack binary value: fn is shown
// head, the first min(h.Len, MaxHead) payload bytes, and returns how many
// of them to drop and a slice of exactly h.Len−skip bytes to read the rest
// into (or nil, to let the Reader allocate the whole payload). The frame's
// Payload is then that slice, and Skipped is skip. It replaces a SetDest
// function.
func (r *Reader) SetDestAfter(fn func(h Header, head []byte) (skip int, into []byte)) { r.dest = fn }

// NewReader returns a Reader that rejects payloads larger than max bytes
// (zero or negative: DefaultMaxPayload; clamped to AbsoluteMaxPayload).
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{r: r, max: ClampMax(max), buf: make([]byte, defaultReadBuffer)}
}

// Allow makes the Reader accept frames with the reserved flag bits f set
// (FlagLane, between procxy peers that agreed on the lane); every other
// reserved bit is still a protocol violation.
func (r *Reader) Allow(f Flags) { r.allowed |= f & FlagsReserved }

// NewReaderSize returns a Reader like [NewReader] whose buffer starts at
// size bytes and doubles, up to 64 KiB, when a read fills it or a frame does
// not fit in it. A server holding many mostly idle connections uses a small
// size, so an idle connection costs little memory and a busy one still reads
// in bulk.
func NewReaderSize(r io.Reader, maxPayload, size int) *Reader {
	size = min(max(size, HeaderSize), defaultReadBuffer)
	return &Reader{r: r, max: ClampMax(maxPayload), buf: make([]byte, size), grow: defaultReadBuffer}
}

// growTo enlarges the buffer to at least n bytes (at most r.grow), keeping
// the unread data.
func (r *Reader) growTo(n int) {
	size := len(r.buf)
	for size < n && size < r.grow {
		size *= 2
	}
	size = min(size, r.grow)
	if size <= len(r.buf) {
		return
	}
	b := make([]byte, size)
	r.end = copy(b, r.buf[r.start:r.end])
	r.start = 0
	r.buf = b
}

// Max returns the receive limit in force.
func (r *Reader) Max() int { return r.max }

// Buffered returns how many bytes have been read from the underlying reader
// but not yet returned in a frame. A connection that batches its replies
// flushes them when this reaches zero: the next ReadFrame would block.
func (r *Reader) Buffered() int { return r.end - r.start }

// HasFrame reports whether the next ReadFrame returns without reading from
// the underlying reader: a whole frame (or a final error) is already
// buffered. A connection queues replies while it is true and flushes them
// before a read that could block.
func (r *Reader) HasFrame() bool {
	if r.err != nil {
		return true
	}
	n := r.end - r.start
	if r.part {
		return int(r.hdr.Len) <= len(r.buf) && n >= int(r.hdr.Len)
	}
	if n < HeaderSize {
		return false
	}
	h, _ := ParseHeader(r.buf[r.start:r.end])
	if h.validate(r.max, r.allowed) != nil {
		return true // ReadFrame fails at once
	}
	return int(h.Len) <= len(r.buf) && n-HeaderSize >= int(h.Len)
}

// ReadFrame reads the next frame. A clean end of stream between frames
// returns io.EOF; a stream that ends inside a frame returns io.ErrUnexpectedEOF.
// An invalid header returns a *HeaderError without reading the payload. After
// an error that is not a deadline error the Reader is unusable and returns
// the same error again.
func (r *Reader) ReadFrame() (Frame, error) {
	if r.err != nil {
		return Frame{}, r.err
	}
	f, err := r.readFrame()
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		r.err = err
		r.part, r.large = false, nil
	}
	return f, err
}

func (r *Reader) readFrame() (Frame, error) {
	if !r.part {
		if err := r.fill(HeaderSize); err != nil {
			if err == io.ErrUnexpectedEOF && r.end == r.start {
				err = io.EOF
			}
			return Frame{}, err
		}
		h, _ := ParseHeader(r.buf[r.start:r.end])
		if err := h.validate(r.max, r.allowed); err != nil {
			return Frame{}, err
		}
		r.start += HeaderSize
		r.part, r.hdr, r.decided, r.large, r.skip, r.got = true, h, false, nil, 0, 0
	}
	h := r.hdr
	n := int(h.Len)
	if n > len(r.buf) && len(r.buf) < r.grow {
		r.growTo(n)
	}
	if n <= len(r.buf) {
		if err := r.fill(n); err != nil {
			return Frame{}, fmt.Errorf("wire: read payload of %d bytes: %w", n, err)
		}
		p := r.buf[r.start : r.start+n : r.start+n]
		r.start += n
		r.part = false
		return Frame{Header: h, Payload: p}, nil
	}
	if !r.decided {
		if err := r.destination(h); err != nil {
			return Frame{}, fmt.Errorf("wire: read payload of %d bytes: %w", n, err)
		}
	}
	if err := r.readLarge(n - r.skip); err != nil {
		return Frame{}, fmt.Errorf("wire: read payload of %d bytes: %w", n, err)
	}
	p := r.large
	r.part, r.large = false, nil
	return Frame{Header: h, Payload: p, Owned: true, Skipped: r.skip}, nil
}

// destination chooses where a large payload goes: the dest function's
// slice, after the bytes it skips, or a slice of the Reader's own.
func (r *Reader) destination(h Header) error {
	n := int(h.Len)
	if r.dest != nil {
		head := min(n, MaxHead)
		if err := r.fill(head); err != nil {
			return err
		}
		skip, into := r.dest(h, r.buf[r.start:r.start+head:r.start+head])
		if skip >= 0 && skip <= head && into != nil && len(into) == n-skip {
			r.large, r.skip = into, skip
			r.start += skip
		}
	}
	if r.large == nil {
		r.large, r.skip = make([]byte, min(n, eagerAlloc)), 0
	}
	r.decided = true
	return nil
}

// fill makes sure at least n bytes (n ≤ len(buf)) are buffered.
func (r *Reader) fill(n int) error {
	if r.end-r.start >= n {
		return nil
	}
	if r.start+n > len(r.buf) { // not enough room behind start: compact
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	for r.end-r.start < n {
		m, err := r.r.Read(r.buf[r.end:])
		if r.end += m; r.end == len(r.buf) && len(r.buf) < r.grow && err == nil {
			r.growTo(2 * len(r.buf)) // the peer sends in bulk: read more at once
		}
		if err != nil {
			if r.end-r.start >= n {
				return nil // the error resurfaces on the next read
			}
			if errors.Is(err, io.EOF) {
				return io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// readLarge reads the n-byte payload of the current frame into r.large,
// continuing at r.got: what is already buffered is copied once, the rest is
// read straight into place. A slice the Reader allocated grows (doubling) as
// the data really arrives.
func (r *Reader) readLarge(n int) error {
	if r.got == 0 {
		r.got = copy(r.large, r.buf[r.start:r.end])
		r.start += r.got
	}
	for r.got < n {
		if r.got == len(r.large) { // the peer really is sending this much: grow
			q := make([]byte, min(n, 2*len(r.large)))
			copy(q, r.large[:r.got])
			r.large = q
		}
		m, err := io.ReadFull(r.r, r.large[r.got:])
		r.got += m
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}
