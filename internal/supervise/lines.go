package supervise

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// LineReader splits a child's output into lines for logging. A line ends
// at LF, CR or CRLF; empty lines are skipped. Memory is bounded: a line
// longer than max is returned cut to max bytes with cut set, and the rest
// of it is skipped. It is not safe for concurrent use.
type LineReader struct {
	r       *bufio.Reader
	max     int
	cur     []byte // the line being read, at most max bytes
	curCut  bool   // cur was cut at max
	pending []line // complete lines not yet returned
	err     error
}

type line struct {
	b   []byte
	cut bool
}

// NewLineReader reads lines of at most max bytes from r.
func NewLineReader(r io.Reader, max int) *LineReader {
	return &LineReader{r: bufio.NewReaderSize(r, min(64<<10, max)), max: max}
}

// Next returns the next non-empty line; the caller owns it. At the end of
// the input it returns io.EOF (or the read error).
func (lr *LineReader) Next() (b []byte, cut bool, err error) {
	for len(lr.pending) == 0 {
		if lr.err != nil {
			return nil, false, lr.err
		}
		chunk, err := lr.r.ReadSlice('\n')
		lr.consume(chunk)
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			lr.err = err
			lr.emit() // a last line without its end
		}
	}
	l := lr.pending[0]
	lr.pending = lr.pending[1:]
	return l.b, l.cut, nil
}

// consume adds chunk to the current line, completing a line at each CR or
// LF. The chunk is only valid until the next read, so lines are copied.
func (lr *LineReader) consume(chunk []byte) {
	for len(chunk) > 0 {
		i := bytes.IndexAny(chunk, "\r\n")
		part := chunk
		if i >= 0 {
			part = chunk[:i]
		}
		if room := lr.max - len(lr.cur); len(part) > room {
			lr.cur = append(lr.cur, part[:room]...)
			lr.curCut = true
		} else {
			lr.cur = append(lr.cur, part...)
		}
		if i < 0 {
			return
		}
		lr.emit()
		chunk = chunk[i+1:]
	}
}

// emit completes the current line; an empty one is skipped.
func (lr *LineReader) emit() {
	if len(lr.cur) > 0 {
		lr.pending = append(lr.pending, line{b: bytes.Clone(lr.cur), cut: lr.curCut})
	}
	lr.cur, lr.curCut = lr.cur[:0], false
}
