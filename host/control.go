package host

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"time"
)

// Control lines the parent writes to the child's stdin (Procwire §4.2).
var (
	linePing     = []byte(`{"jsonrpc":"2.0","method":"$ping"}` + "\n")
	lineShutdown = []byte(`{"jsonrpc":"2.0","method":"$shutdown","params":{}}` + "\n")
)

// lineReader splits a child's output into lines. A line ends at LF, CR or
// CRLF; empty lines are skipped. Memory is bounded: a line longer than max
// is returned cut to max bytes with cut set, and the rest of it is skipped.
type lineReader struct {
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

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, min(64<<10, max)), max: max}
}

// next returns the next non-empty line. At the end of the input it returns
// io.EOF (or the read error).
func (lr *lineReader) next() (b []byte, cut bool, err error) {
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
func (lr *lineReader) consume(chunk []byte) {
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
func (lr *lineReader) emit() {
	if len(lr.cur) > 0 {
		lr.pending = append(lr.pending, line{b: bytes.Clone(lr.cur), cut: lr.curCut})
	}
	lr.cur, lr.curCut = lr.cur[:0], false
}

// control is a parsed control line from the child's stdout (§4.6).
type control struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// parseControl returns the control message on line, or ok false when the
// line is not one: it does not start with '{', is not JSON, or names no
// method the parent knows.
func parseControl(line []byte) (c control, ok bool) {
	if len(line) == 0 || line[0] != '{' {
		return c, false
	}
	if json.Unmarshal(line, &c) != nil {
		return c, false
	}
	switch c.Method {
	case "$init", "$error", "$pong":
		return c, true
	}
	return c, false
}

// ctlWriter writes control lines to the child's stdin, one write per line,
// serialized (§4.9).
type ctlWriter struct {
	mu sync.Mutex // serializes writes to w
	w  io.Writer
}

// ctlWriteTimeout bounds one control write: a child that does not read its
// stdin must not block the heartbeat or Shutdown.
const ctlWriteTimeout = time.Second

func (c *ctlWriter) send(line []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d, ok := c.w.(interface{ SetWriteDeadline(time.Time) error }); ok {
		d.SetWriteDeadline(time.Now().Add(ctlWriteTimeout))
	}
	_, err := c.w.Write(line)
	return err
}

// tail keeps the last few lines of the child's stderr for exit errors.
type tail struct {
	mu    sync.Mutex
	lines []string // guarded by mu; at most tailLines, each at most tailWidth bytes
}

const (
	tailLines = 5
	tailWidth = 200
)

func (t *tail) add(line []byte) {
	if len(line) > tailWidth {
		line = append(line[:tailWidth:tailWidth], "…"...)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) == tailLines {
		copy(t.lines, t.lines[1:])
		t.lines = t.lines[:tailLines-1]
	}
	t.lines = append(t.lines, string(line))
}

func (t *tail) get() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}
