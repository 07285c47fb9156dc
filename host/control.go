package host

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// Control lines the parent writes to the child's stdin (Procwire §4.2).
var (
	linePing     = []byte(`{"jsonrpc":"2.0","method":"$ping"}` + "\n")
	lineShutdown = []byte(`{"jsonrpc":"2.0","method":"$shutdown","params":{}}` + "\n")
)

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
