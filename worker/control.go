package worker

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Control lines the worker writes (protocol §4.2, §11.5).
var pongLine = []byte(`{"jsonrpc":"2.0","method":"$pong"}` + "\n")

// maxControlLine bounds a control line read from stdin; longer lines are
// skipped (the parent only ever sends short ones).
const maxControlLine = 64 << 10

// appendInit appends the $init line, byte for byte as the reference child
// writes it: members in the order jsonrpc, method, params; pipe, schema,
// version; methods, events; id, response (then timeout); methods and events
// in registration order.
// With metadata it adds {"procxy":{"metadata":true}} to the params: the
// worker takes request metadata (docs/PROTOCOL.md).
func appendInit(b []byte, pipe string, methods []*methodDef, events []*eventDef, metadata bool) []byte {
	b = append(b, `{"jsonrpc":"2.0","method":"$init","params":{"pipe":`...)
	b = appendJSONString(b, pipe)
	b = append(b, `,"schema":{"methods":{`...)
	for i, m := range methods {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, m.name)
		b = append(b, `:{"id":`...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, `,"response":"`...)
		b = append(b, m.kind.String()...)
		b = append(b, '"')
		if m.timeout != nil {
			b = append(b, `,"timeout":`...)
			b = strconv.AppendInt(b, m.timeout.Milliseconds(), 10)
		}
		b = append(b, '}')
	}
	b = append(b, `},"events":{`...)
	for i, e := range events {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, e.name)
		b = append(b, `:{"id":`...)
		b = strconv.AppendInt(b, int64(i+1), 10)
		b = append(b, '}')
	}
	b = append(b, `}},"version":"1.0.0"`...)
	if metadata {
		b = append(b, `,"procxy":{"metadata":true}`...)
	}
	return append(b, "}}\n"...)
}

// appendErrorLine appends the $error line, which fails the parent's spawn
// attempt with message when it comes instead of $init (§4.7).
func appendErrorLine(b []byte, message string) []byte {
	b = append(b, `{"jsonrpc":"2.0","method":"$error","params":{"message":`...)
	b = appendJSONString(b, message)
	return append(b, "}}\n"...)
}

// appendJSONString appends s as JavaScript's JSON.stringify writes it: only
// '"', '\\' and control characters are escaped (no HTML escaping, U+2028
// and U+2029 left alone, unlike encoding/json). Invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = utf8.AppendRune(b, utf8.RuneError)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// control reads the control plane from stdin on its own goroutine.
type control struct {
	in    io.Reader
	ended chan string   // receives why the parent ended the session, once
	quit  chan struct{} // closed by stop: the reader must not act any more
	done  chan struct{} // closed when the reader goroutine returns
	once  sync.Once
}

// startControl starts the stdin reader: $ping is answered with $pong right
// away, from the reader goroutine, so a busy data plane cannot delay it;
// $shutdown and the end of stdin end the session. Everything else is ignored.
func (w *Worker) startControl() *control {
	c := &control{
		in:    w.in,
		ended: make(chan string, 1),
		quit:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	go func() { // owned by c: stop waits for it when stdin has deadlines
		defer close(c.done)
		c.ended <- w.readControl(c)
	}()
	return c
}

// stop makes the reader goroutine quit. If stdin supports read deadlines the
// blocked read is interrupted and stop waits for the goroutine; otherwise
// the goroutine ends at its next read without acting on it.
func (c *control) stop() {
	c.once.Do(func() {
		close(c.quit)
		d, ok := c.in.(interface{ SetReadDeadline(time.Time) error })
		if ok && d.SetReadDeadline(time.Now()) == nil {
			<-c.done
			d.SetReadDeadline(time.Time{})
		}
	})
}

// readControl reads control lines until the session ends and returns why.
func (w *Worker) readControl(c *control) string {
	r := bufio.NewReaderSize(c.in, 4096)
	skipping := false // inside a line longer than maxControlLine
	var long []byte   // a line longer than the bufio buffer, being assembled
	for {
		frag, err := r.ReadSlice('\n')
		select {
		case <-c.quit:
			return "stopped"
		default:
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			if !skipping && len(long)+len(frag) <= maxControlLine {
				long = append(long, frag...)
			} else {
				skipping, long = true, nil
			}
			continue
		}
		line := frag
		if long != nil {
			line = append(long, frag...)
			long = nil
		}
		if skipping {
			skipping = false
		} else if why := w.handleControl(line); why != "" {
			return why
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "stdin closed (the parent is gone)"
			}
			return fmt.Sprintf("stdin: %v", err)
		}
	}
}

// handleControl acts on one line and returns non-empty when the session ends.
// Like the reference child it only looks at lines whose very first byte is
// '{', ignores invalid JSON, and keys on the method alone (§4.6).
func (w *Worker) handleControl(line []byte) string {
	if len(line) == 0 || line[0] != '{' {
		return ""
	}
	var msg struct {
		Method string `json:"method"`
	}
	if json.Unmarshal(line, &msg) != nil {
		return ""
	}
	switch msg.Method {
	case "$ping":
		if err := w.writeLine(pongLine); err != nil {
			return fmt.Sprintf("stdout: %v", err)
		}
	case "$shutdown":
		return "$shutdown"
	}
	return ""
}
