package harness

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// The floor is the least any RPC stack can do over the same socket: a
// 4-byte big-endian length and the payload, echoed back verbatim.
//
// Server: one goroutine per connection reads a request (through a 64 KiB
// bufio.Reader) into a reused buffer and answers it with one write of the
// same bytes, strictly in order. It never coalesces responses.
//
// Client: a request is one write (length and payload copied into a reused
// buffer; above 64 KiB two writes, length then payload). Calls may overlap:
// callers share the connection, write under a mutex, and take turns
// reading responses in the order they wrote requests (the server answers
// in order), each caller reading its own response straight into its
// buffer. A caller with no one ahead of it reads at once, so a sequential
// caller does write, then read, with no goroutine handoff. There is no
// reader goroutine and no request id.

const floorRole = "floor"

const floorMaxPayload = 64 << 20

func init() { servers[floorRole] = serveFloor }

func serveFloor(l net.Listener) error {
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go floorEchoConn(c)
	}
}

func floorEchoConn(c net.Conn) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	buf := make([]byte, 4+64<<10)
	for {
		if _, err := io.ReadFull(r, buf[:4]); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(buf[:4]))
		if n > floorMaxPayload {
			return
		}
		if cap(buf) < 4+n {
			nb := make([]byte, 4+n)
			copy(nb, buf[:4])
			buf = nb
		}
		buf = buf[:4+n]
		if _, err := io.ReadFull(r, buf[4:]); err != nil {
			return
		}
		if _, err := c.Write(buf); err != nil {
			return
		}
	}
}

type floorClient struct {
	child *Child
	conn  net.Conn
	r     *bufio.Reader // used only by the caller holding the read turn
	rhdr  [4]byte       // used only by the caller holding the read turn

	wmu  sync.Mutex
	wbuf []byte        // request staging; guarded by wmu
	tail chan struct{} // the read turn of the next caller; guarded by wmu
	err  error         // first failure; guarded by wmu
}

var turnPool = sync.Pool{New: func() any { return make(chan struct{}, 1) }}

func startFloor(tr Transport) (Client, error) {
	child, conn, err := spawnDial(floorRole, tr)
	if err != nil {
		return nil, err
	}
	c := &floorClient{child: child, conn: conn, r: bufio.NewReaderSize(conn, 64<<10), tail: make(chan struct{}, 1)}
	c.tail <- struct{}{} // the first caller may read at once
	return c, nil
}

func (c *floorClient) Echo(_ context.Context, in, out []byte) ([]byte, error) {
	if len(in) > floorMaxPayload {
		return out, fmt.Errorf("floor: payload of %d bytes is too large", len(in))
	}
	mine := turnPool.Get().(chan struct{})
	c.wmu.Lock()
	prev := c.tail
	c.tail = mine
	werr := c.err
	if werr == nil {
		werr = c.writeRequest(in)
		if werr != nil {
			c.err = werr
			c.conn.Close() // everyone queued behind us fails too
		}
	}
	c.wmu.Unlock()

	<-prev // our turn to read: every earlier response has been consumed
	turnPool.Put(prev)
	defer func() { mine <- struct{}{} }()
	if werr != nil {
		return out, werr
	}
	if _, err := io.ReadFull(c.r, c.rhdr[:]); err != nil {
		return out, err
	}
	n := int(binary.BigEndian.Uint32(c.rhdr[:]))
	if n > floorMaxPayload {
		c.conn.Close()
		return out, errors.New("floor: response too large")
	}
	out = grow(out, n)
	if _, err := io.ReadFull(c.r, out); err != nil {
		return out, err
	}
	return out, nil
}

// writeRequest writes one request; the caller holds wmu.
func (c *floorClient) writeRequest(in []byte) error {
	if len(in) <= 64<<10 {
		c.wbuf = grow(c.wbuf, 4+len(in))
		binary.BigEndian.PutUint32(c.wbuf, uint32(len(in)))
		copy(c.wbuf[4:], in)
		_, err := c.conn.Write(c.wbuf)
		return err
	}
	c.wbuf = grow(c.wbuf, 4)
	binary.BigEndian.PutUint32(c.wbuf, uint32(len(in)))
	if _, err := c.conn.Write(c.wbuf); err != nil {
		return err
	}
	_, err := c.conn.Write(in)
	return err
}

func (c *floorClient) Close() error {
	c.conn.Close()
	return c.child.Close()
}

// PID is the child's process id.
func (c *floorClient) PID() int { return c.child.PID() }
