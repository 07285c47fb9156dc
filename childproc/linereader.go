package childproc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/procxy/procxy/internal/linereader"
)

const shrinkAbove = 1 << 20 // an idle encoder buffer larger than this is dropped

// lineReader splits the IPC stream into '\n'-terminated lines with the
// module's one bounded line splitter (internal/linereader), and words its
// errors as IPC protocol errors. It is not safe for concurrent use.
type lineReader struct{ lr *linereader.Reader }

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{lr: linereader.New(r, max)}
}

// ReadLine returns the next line without its '\n'. The slice is valid
// until the next call. At the end of the stream it returns io.EOF, or
// io.ErrUnexpectedEOF when an unterminated tail was dropped (Node drops it
// silently). A line longer than max returns an error wrapping
// ErrMessageTooLarge and ErrProtocol; the reader is then unusable.
func (r *lineReader) ReadLine() ([]byte, error) {
	line, _, err := r.lr.Next()
	var te *linereader.TailError
	switch {
	case err == nil:
		return line, nil
	case errors.Is(err, linereader.ErrTooLong):
		return nil, fmt.Errorf("%w: %w: line %s", ErrProtocol, ErrMessageTooLarge, strings.TrimPrefix(err.Error(), linereader.ErrTooLong.Error()+": "))
	case errors.As(err, &te):
		return nil, fmt.Errorf("childproc: IPC stream ended inside a message, %d bytes dropped: %w", te.Dropped, io.ErrUnexpectedEOF)
	}
	return nil, err
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
