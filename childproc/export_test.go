package childproc

import (
	"context"
	"io"
	"net"
)

// Internals reached by the external tests.

// NewChannel starts a Channel over conn, as Child and Parent do.
func NewChannel(conn net.Conn, maxMessage int) *Channel { return newChannel(conn, maxMessage, nil) }

// WriteRaw writes b to the channel's socket as is, bypassing Send's
// checks, to reproduce what a misbehaving peer or Node's transcript does.
func (c *Channel) WriteRaw(ctx context.Context, b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(ctx, b)
}

// LineReader exposes the bounded line reader.
type LineReader = lineReader

func NewLineReader(r io.Reader, max int) *LineReader { return newLineReader(r, max) }

var (
	ParseLine     = parseLine
	AppendMessage = appendMessage
	OpenParent    = openParent
	LookPath      = lookPath
	ChildEnv      = childEnv
)

var ValidJSON = validJSON
