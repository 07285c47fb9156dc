package childproc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync"
)

const (
	initialReadBuffer = 64 << 10 // first buffer; it grows up to the message limit
	shrinkAbove       = 1 << 20  // an idle buffer larger than this is dropped
)

// lineReader splits a stream into '\n'-terminated lines. It scans each byte
// once (rescanning made 100 MiB lines quadratic, §5.3), never holds more
// than max+1 bytes of one line, and fails with ErrMessageTooLarge before
// allocating past that. It is not safe for concurrent use.
type lineReader struct {
	r          io.Reader
	max        int // longest line, without its '\n'
	buf        []byte
	start, end int   // buf[start:end] holds unread bytes
	scanned    int   // buf[start:scanned] has no '\n'
	err        error // read error to report once buffered lines are consumed
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: r, max: max}
}

// ReadLine returns the next line without its '\n'. The slice is valid
// until the next call. At the end of the stream it returns io.EOF, or
// io.ErrUnexpectedEOF when an unterminated tail was dropped (Node drops it
// silently). A line longer than max returns an error wrapping
// ErrMessageTooLarge and ErrProtocol; the reader is then unusable.
func (lr *lineReader) ReadLine() ([]byte, error) {
	if lr.start == lr.end {
		lr.start, lr.end, lr.scanned = 0, 0, 0
		if len(lr.buf) > shrinkAbove {
			lr.buf = nil
		}
	}
	for {
		if i := bytes.IndexByte(lr.buf[lr.scanned:lr.end], '\n'); i >= 0 {
			nl := lr.scanned + i
			line := lr.buf[lr.start:nl]
			lr.start, lr.scanned = nl+1, nl+1
			if len(line) > lr.max {
				return nil, lr.tooLarge()
			}
			return line, nil
		}
		lr.scanned = lr.end
		if lr.end-lr.start > lr.max {
			return nil, lr.tooLarge()
		}
		if lr.err != nil {
			if lr.end > lr.start {
				n := lr.end - lr.start
				lr.start = lr.end
				if lr.err == io.EOF {
					return nil, fmt.Errorf("childproc: IPC stream ended inside a message, %d bytes dropped: %w", n, io.ErrUnexpectedEOF)
				}
			}
			return nil, lr.err
		}
		lr.makeRoom()
		n, err := lr.r.Read(lr.buf[lr.end:])
		lr.end += n
		lr.err = err
	}
}

// makeRoom ensures buf has free space after end, by moving the unread bytes
// to the front or by growing buf, never beyond max+1 bytes of a line plus
// one read.
func (lr *lineReader) makeRoom() {
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
	size := 2 * len(lr.buf)
	if size < initialReadBuffer {
		size = initialReadBuffer
	}
	if limit := lr.max + 1; size > limit && limit > len(lr.buf) {
		size = limit // reading max+1 bytes without a '\n' proves the line too long
	}
	if size <= len(lr.buf) {
		size = len(lr.buf) + initialReadBuffer
	}
	nb := make([]byte, size)
	copy(nb, lr.buf[lr.start:lr.end])
	lr.buf = nb
}

func (lr *lineReader) tooLarge() error {
	lr.err = fmt.Errorf("%w: %w: line longer than %d bytes", ErrProtocol, ErrMessageTooLarge, lr.max)
	lr.start, lr.end, lr.scanned = 0, 0, 0
	return lr.err
}

// isJSONSpace reports the whitespace JSON.parse skips around a value.
func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// parseLine validates one received line and returns the message it holds,
// trimmed, and the "cmd" of a Node-internal message (§3.1), or "" for a
// user message. A line Node could not parse is an ErrProtocol error.
func parseLine(line []byte) (msg []byte, cmd string, err error) {
	for len(line) > 0 && isJSONSpace(line[0]) {
		line = line[1:]
	}
	for len(line) > 0 && isJSONSpace(line[len(line)-1]) {
		line = line[:len(line)-1]
	}
	if len(line) == 0 {
		return nil, "", fmt.Errorf("%w: empty line", ErrProtocol)
	}
	if !validJSON(line) {
		return nil, "", fmt.Errorf("%w: line is not JSON: %q", ErrProtocol, truncate(line, 64))
	}
	return line, internalCmd(line), nil
}

// internalCmd returns the cmd of an internal message: a JSON object whose
// "cmd" member is a string longer than 5 bytes starting with "NODE_"
// (Node checks length > 5 in UTF-16 units, which agrees for this prefix).
// Like JSON.parse it takes the last of duplicate keys and matches the key
// case-sensitively.
func internalCmd(msg []byte) string {
	if msg[0] != '{' || (!bytes.Contains(msg, []byte("NODE_")) && !bytes.Contains(msg, []byte(`\u`))) {
		return "" // fast path: "NODE_" can only appear literally or escaped
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(msg, &obj) != nil {
		return ""
	}
	raw, ok := obj["cmd"]
	if !ok {
		return ""
	}
	var cmd string
	if json.Unmarshal(raw, &cmd) != nil || len(cmd) <= 5 || cmd[:5] != "NODE_" {
		return ""
	}
	return cmd
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

var encoders = sync.Pool{New: func() any { return new(encoder) }}

type encoder struct {
	buf bytes.Buffer
	enc *json.Encoder
}

// appendMessage encodes v as one line: JSON without a newline, plus '\n',
// the only form a Node peer accepts (an invalid or empty line kills it). It
// refuses internal messages and messages longer than max.
func appendMessage(dst []byte, v any, max int) ([]byte, error) {
	if raw, ok := v.(json.RawMessage); ok && bytes.IndexByte(raw, '\n') < 0 && validJSON(raw) {
		// Already one valid line (a received message, say): write it as
		// is rather than compacting it again.
		if len(raw) > max {
			return dst, fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, len(raw), max)
		}
		if cmd := internalCmd(bytes.Trim(raw, " \t\r")); cmd != "" {
			return dst, fmt.Errorf("%w: %q", ErrInternalMessage, cmd)
		}
		return append(append(dst, raw...), '\n'), nil
	}
	e := encoders.Get().(*encoder)
	defer func() {
		if e.buf.Cap() <= shrinkAbove {
			encoders.Put(e)
		}
	}()
	e.buf.Reset()
	if e.enc == nil {
		e.enc = json.NewEncoder(&e.buf)
	}
	if err := e.enc.Encode(v); err != nil { // compact; validates json.RawMessage
		return dst, fmt.Errorf("childproc: encode message: %w", err)
	}
	line := e.buf.Bytes()
	if len(line)-1 > max {
		return dst, fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, len(line)-1, max)
	}
	if cmd := internalCmd(line[:len(line)-1]); cmd != "" {
		return dst, fmt.Errorf("%w: %q", ErrInternalMessage, cmd)
	}
	return append(dst, line...), nil
}
