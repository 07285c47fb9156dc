// Package linereader is the one bounded line splitter of the module: it
// reads a Node IPC channel in package childproc (where a line past the
// limit is a protocol error) and a child's output in internal/supervise
// (where it is logged cut).
package linereader

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

const (
	initialBuffer = 64 << 10 // first buffer; it grows up to the line limit
	shrinkAbove   = 1 << 20  // an idle buffer larger than this is dropped
)

// ErrTooLong is the error of a line longer than the limit, without Cut.
var ErrTooLong = errors.New("line too long")

// TailError reports an unterminated last line that a New Reader dropped.
// It matches io.ErrUnexpectedEOF.
type TailError struct{ Dropped int }

func (e *TailError) Error() string {
	return fmt.Sprintf("stream ended inside a line, %d bytes dropped", e.Dropped)
}

// Unwrap returns io.ErrUnexpectedEOF.
func (e *TailError) Unwrap() error { return io.ErrUnexpectedEOF }

// Reader splits a stream into lines. It scans each byte once (rescanning
// made 100 MiB lines quadratic) and never holds more than max+1 bytes of
// one line. It is not safe for concurrent use.
type Reader struct {
	r          io.Reader
	max        int  // longest line, without its end
	cut        bool // a longer line is returned cut; else ErrTooLong
	cr         bool // CR ends a line too (CRLF is one end and an empty line)
	skipping   bool // dropping the rest of a cut line
	buf        []byte
	start, end int   // buf[start:end] holds unread bytes
	scanned    int   // buf[start:scanned] has no line end
	err        error // read error to report once buffered lines are consumed
}

// New returns a Reader of lines of at most max bytes that end at '\n'. A
// longer line fails with an error wrapping ErrTooLong, after which the
// Reader is unusable.
func New(r io.Reader, max int) *Reader { return &Reader{r: r, max: max} }

// NewCutting returns a Reader for output that is logged: a line ends at
// LF, CR or CRLF, and a line longer than max is returned cut to max bytes
// (cut set) while the rest of it is skipped.
func NewCutting(r io.Reader, max int) *Reader { return &Reader{r: r, max: max, cut: true, cr: true} }

// Next returns the next line without its end; the slice is valid until
// the next call. At the end of the stream it returns io.EOF (or the read
// error); a New Reader returns an error wrapping io.ErrUnexpectedEOF
// instead when an unterminated tail is dropped, and a NewCutting one
// returns that tail as a last line.
func (lr *Reader) Next() (line []byte, cut bool, err error) {
	for {
		if lr.start == lr.end {
			lr.start, lr.end, lr.scanned = 0, 0, 0
			if len(lr.buf) > shrinkAbove {
				lr.buf = nil
			}
		}
		if i := lr.index(lr.buf[lr.scanned:lr.end]); i >= 0 {
			nl := lr.scanned + i
			line := lr.buf[lr.start:nl]
			lr.start, lr.scanned = nl+1, nl+1
			if lr.skipping {
				lr.skipping = false
				continue
			}
			if len(line) > lr.max {
				if !lr.cut {
					return nil, false, lr.tooLong()
				}
				return line[:lr.max], true, nil
			}
			return line, false, nil
		}
		lr.scanned = lr.end
		if lr.end-lr.start > lr.max {
			if !lr.cut {
				return nil, false, lr.tooLong()
			}
			if !lr.skipping {
				line := lr.buf[lr.start : lr.start+lr.max]
				lr.skipping = true
				lr.start, lr.scanned = lr.end, lr.end // the rest is dropped; line stays valid
				return line, true, nil
			}
			lr.start, lr.scanned = lr.end, lr.end
		}
		if lr.err != nil {
			if n := lr.end - lr.start; n > 0 {
				line := lr.buf[lr.start:lr.end]
				lr.start = lr.end
				switch {
				case lr.skipping:
				case lr.cut:
					return line, false, nil
				case lr.err == io.EOF:
					return nil, false, &TailError{Dropped: n}
				}
			}
			return nil, false, lr.err
		}
		lr.makeRoom()
		n, err := lr.r.Read(lr.buf[lr.end:])
		lr.end += n
		lr.err = err
	}
}

// index finds the first line end in b.
func (lr *Reader) index(b []byte) int {
	if lr.cr {
		return bytes.IndexAny(b, "\r\n")
	}
	return bytes.IndexByte(b, '\n')
}

// makeRoom ensures buf has free space after end, by moving the unread bytes
// to the front or by growing buf, never beyond max+1 bytes of a line plus
// one read.
func (lr *Reader) makeRoom() {
	if lr.end < len(lr.buf) {
		return
	}
	if lr.start > 0 {
		n := copy(lr.buf, lr.buf[lr.start:lr.end])
		lr.scanned -= lr.start
		lr.start, lr.end = 0, n
		if lr.end < len(lr.buf) {
			return
		}
	}
	size := max(2*len(lr.buf), initialBuffer)
	if limit := lr.max + 1; size > limit && limit > len(lr.buf) {
		size = limit // reading max+1 bytes without a line end proves the line too long
	}
	if size <= len(lr.buf) {
		size = len(lr.buf) + initialBuffer
	}
	nb := make([]byte, size)
	copy(nb, lr.buf[lr.start:lr.end])
	lr.buf = nb
}

func (lr *Reader) tooLong() error {
	lr.err = fmt.Errorf("%w: longer than %d bytes", ErrTooLong, lr.max)
	lr.start, lr.end, lr.scanned = 0, 0, 0
	return lr.err
}
