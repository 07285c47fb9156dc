package childproc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Received messages wait for the consumer in a buffer of up to
// maxQueued messages, fewer when messages may be large, so that at most
// about queueBudget bytes wait. When it is full the reader stops reading,
// which makes the peer's writes block (Go) or queue (Node: send() returns
// false).
const (
	maxQueued   = 64
	queueBudget = 256 << 20
)

func queueLen(maxMessage int) int {
	return max(1, min(maxQueued, queueBudget/maxMessage))
}

// nack is the reply to a NODE_HANDLE message: childproc does not accept
// handles, and Node stalls the channel until it gets an answer (§3.2).
var nack = []byte(`{"cmd":"NODE_HANDLE_NACK"}` + "\n")

// Channel is one end of a Node.js IPC channel in 'json' serialization: a
// Unix socket carrying one JSON text per line. [Child.Channel] returns the
// parent's end and [Parent] the child's end. Its methods are safe for
// concurrent use.
//
// Received messages arrive on [Channel.Messages] in order. Node-internal
// messages (an object whose "cmd" starts with "NODE_") never appear there:
// a NODE_HANDLE is answered with NODE_HANDLE_NACK (handles are not
// supported) and the others are ignored, as Node ignores unknown ones.
type Channel struct {
	conn       net.Conn
	maxMessage int
	msgs       chan json.RawMessage
	stopping   chan struct{} // closed by stop: the reader must return
	gone       chan struct{} // closed when the reader has returned
	onGone     func()        // called once, by the reader, just before gone closes
	wg         sync.WaitGroup

	wmu  sync.Mutex // serialises writes, so lines never interleave; guards wbuf
	wbuf []byte

	mu        sync.Mutex // guards connected and err
	connected bool
	err       error

	stopOnce sync.Once
}

// newChannel starts the reader of a channel over conn. onGone, if not
// nil, runs on the reader goroutine once the channel is disconnected.
func newChannel(conn net.Conn, maxMessage int, onGone func()) *Channel {
	if maxMessage <= 0 {
		maxMessage = DefaultMaxMessageSize
	}
	c := &Channel{
		conn:       conn,
		maxMessage: maxMessage,
		msgs:       make(chan json.RawMessage, queueLen(maxMessage)),
		stopping:   make(chan struct{}),
		gone:       make(chan struct{}),
		onGone:     onGone,
		connected:  true,
	}
	c.wg.Go(c.readLoop)
	return c
}

// Messages returns the received messages, each one JSON text (decode it
// with json.Unmarshal). The caller owns each message. The channel is closed
// after the last message that arrived before the disconnect.
//
// Receive until it is closed, or call Disconnect: while the buffer is
// full, the channel stops reading from the socket, so the peer is slowed
// down and a disconnect by the peer is not noticed.
func (c *Channel) Messages() <-chan json.RawMessage { return c.msgs }

// Disconnected returns a channel that is closed once the IPC channel is
// disconnected: the peer closed it or exited, Disconnect was called, or a
// protocol error ended it (Node's 'disconnect' event).
func (c *Channel) Disconnected() <-chan struct{} { return c.gone }

// Connected reports whether the channel is still connected (Node's connected).
func (c *Channel) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

// Err returns why the channel ended: nil while it is connected and after a
// clean disconnect (either side closed it, or the peer exited), otherwise
// an error wrapping ErrProtocol, io.ErrUnexpectedEOF (the peer stopped in
// the middle of a message), or the failed read or write.
func (c *Channel) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Send encodes v with encoding/json and writes it as one line. It blocks
// while the socket is full (backpressure) until ctx is done. Send returns
// once the kernel has the whole line, which, as in Node, is no proof that
// the peer read it. It fails with ErrDisconnected after a disconnect, with
// ErrMessageTooLarge or ErrInternalMessage for a message it refuses (the
// channel stays usable), and with the context's error if ctx ended before
// any byte was written. If ctx ends after part of the line was written, the
// channel is closed, since the stream can no longer be framed.
func (c *Channel) Send(ctx context.Context, v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	line, err := appendMessage(c.wbuf[:0], v, c.maxMessage)
	if err != nil {
		return err
	}
	if cap(line) <= shrinkAbove {
		c.wbuf = line
	}
	return c.writeLocked(ctx, line)
}

// Disconnect closes the channel (Node's disconnect()). Lines already
// written stay readable by the peer, which then sees the end of the
// stream. Disconnect waits for the reader goroutine to return. It returns
// ErrDisconnected if the channel was already disconnected, by either side.
func (c *Channel) Disconnect() error {
	c.mu.Lock()
	was := c.connected
	c.connected = false
	c.mu.Unlock()
	c.stop()
	c.wg.Wait()
	if !was {
		return ErrDisconnected
	}
	return nil
}

// aLongTimeAgo is a deadline in the past, to interrupt a blocked write.
var aLongTimeAgo = time.Unix(1, 0)

// writeLocked writes one whole line. The caller holds wmu.
func (c *Channel) writeLocked(ctx context.Context, line []byte) error {
	if !c.Connected() {
		return ErrDisconnected
	}
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	var stop func() bool
	var fired chan struct{}
	if ctx.Done() != nil {
		fired = make(chan struct{})
		stop = context.AfterFunc(ctx, func() {
			c.conn.SetWriteDeadline(aLongTimeAgo)
			close(fired)
		})
	}
	n, err := c.conn.Write(line)
	if stop != nil && !stop() {
		<-fired
		c.conn.SetWriteDeadline(time.Time{})
	}
	if err == nil {
		return nil
	}
	if n > 0 {
		c.fail(fmt.Errorf("childproc: IPC write cut after %d of %d bytes: %w", n, len(line), err))
	}
	switch {
	case ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded):
		return context.Cause(ctx)
	case isDisconnect(err):
		return fmt.Errorf("%w: %w", ErrDisconnected, err)
	}
	return fmt.Errorf("childproc: IPC write: %w", err)
}

// isDisconnect reports errors that mean the channel is closed.
func isDisconnect(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET)
}

// fail ends the channel with err (the first error is kept).
func (c *Channel) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.connected = false
	c.mu.Unlock()
	c.stop()
}

// stop closes the socket and tells the reader to return; idempotent.
func (c *Channel) stop() {
	c.stopOnce.Do(func() {
		close(c.stopping)
		c.conn.Close()
	})
}

// readLoop is the channel's only reader. It returns at the end of the
// stream, on a protocol error, or when stop is called.
func (c *Channel) readLoop() {
	var err error
	defer func() {
		if err != nil && isDisconnect(err) {
			err = nil // EOF, reset by a dead peer, or our own Close: a clean disconnect
		}
		if err != nil {
			c.fail(err)
		} else {
			c.mu.Lock()
			c.connected = false
			c.mu.Unlock()
			c.stop()
		}
		close(c.msgs)
		if c.onGone != nil {
			c.onGone()
		}
		close(c.gone)
	}()
	lr := newLineReader(c.conn, c.maxMessage)
	for {
		var line, msg []byte
		var cmd string
		line, err = lr.ReadLine()
		if err != nil {
			return
		}
		msg, cmd, err = parseLine(line)
		if err != nil {
			return
		}
		if cmd != "" {
			c.internal(cmd)
			continue
		}
		m := make(json.RawMessage, len(msg))
		copy(m, msg)
		select {
		case c.msgs <- m:
		case <-c.stopping:
			return
		}
	}
}

// internal handles a Node-internal message (§3.2). Only NODE_HANDLE needs
// an answer; answering anything else (an unsolicited ACK) would crash Node.
// Passed fds are never installed: the socket is read without an ancillary
// buffer, so the kernel discards them.
func (c *Channel) internal(cmd string) {
	if cmd != "NODE_HANDLE" {
		return
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.writeLocked(context.Background(), nack) // an error here also ends the reader's read
}
