package wire

import (
	"errors"
	"fmt"
	"io"
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
}

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
// A Reader is not safe for concurrent use; a connection has one reader goroutine.
type Reader struct {
	r     io.Reader
	max   int
	buf   []byte
	start int // unread data is buf[start:end]
	end   int
	err   error // sticky: once a read or a header fails, every later call returns it
	dest  func(Header) []byte
	grow  int // the buffer may grow up to this size; 0: fixed
}

// SetDest sets a function asked where to put each payload too large for the
// Reader's buffer: it returns a slice of exactly h.Len bytes to read the
// payload into (the frame is then Owned and its Payload is that slice), or
// nil to let the Reader allocate one. It is called on the reading goroutine,
// after the header is validated.
func (r *Reader) SetDest(fn func(h Header) []byte) { r.dest = fn }

// NewReader returns a Reader that rejects payloads larger than max bytes
// (zero or negative: DefaultMaxPayload; clamped to AbsoluteMaxPayload).
func NewReader(r io.Reader, max int) *Reader {
	return &Reader{r: r, max: ClampMax(max), buf: make([]byte, defaultReadBuffer)}
}

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

// ReadFrame reads the next frame. A clean end of stream between frames
// returns io.EOF; a stream that ends inside a frame returns io.ErrUnexpectedEOF.
// An invalid header returns a *HeaderError without reading the payload. After
// any error the Reader is unusable and returns the same error again.
func (r *Reader) ReadFrame() (Frame, error) {
	if r.err != nil {
		return Frame{}, r.err
	}
	f, err := r.readFrame()
	if err != nil {
		r.err = err
	}
	return f, err
}

func (r *Reader) readFrame() (Frame, error) {
	if err := r.fill(HeaderSize); err != nil {
		if err == io.ErrUnexpectedEOF && r.end == r.start {
			err = io.EOF
		}
		return Frame{}, err
	}
	h, _ := ParseHeader(r.buf[r.start:r.end])
	if err := h.Validate(r.max); err != nil {
		return Frame{}, err
	}
	r.start += HeaderSize
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
		return Frame{Header: h, Payload: p}, nil
	}
	var into []byte
	if r.dest != nil {
		if into = r.dest(h); len(into) != n {
			into = nil
		}
	}
	p, err := r.readLarge(n, into)
	if err != nil {
		return Frame{}, fmt.Errorf("wire: read payload of %d bytes: %w", n, err)
	}
	return Frame{Header: h, Payload: p, Owned: true}, nil
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

// readLarge reads an n-byte payload into a slice of its own (into, if it is
// not nil): what is already buffered is copied once, the rest is read
// straight into place.
func (r *Reader) readLarge(n int, into []byte) ([]byte, error) {
	p := into
	if p == nil {
		p = make([]byte, min(n, eagerAlloc))
	}
	got := copy(p, r.buf[r.start:r.end])
	r.start += got
	for got < n {
		if got == len(p) { // the peer really is sending this much: grow
			q := make([]byte, min(n, 2*len(p)))
			copy(q, p[:got])
			p = q
		}
		m, err := io.ReadFull(r.r, p[got:])
		got += m
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return p, nil
}
