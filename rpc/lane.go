package rpc

import (
	"fmt"
	"io"
	"net"
	"os"

	"github.com/procxy/procxy/internal/lane"
	"github.com/procxy/procxy/internal/readturn"
	"github.com/procxy/procxy/rpc/wire"
)

// The shared-memory lane (Options.SharedMemory; internal/lane has the
// design, docs/PROTOCOL.md the frames). A parent that has it on creates two
// regions and offers them with its first frame (after auth); a child that
// has it on maps them and accepts. From then on, a payload of at least
// SharedMemoryMin bytes is copied into the sender's region and the frame
// carries a 16-byte reference (FlagLane); the receiver copies it out —
// straight into the caller's buffer or a reused request buffer when the
// frame would have been read into one — and releases it.

// unixConn is what the lane needs of the transport: a Unix socket, to pass
// the regions' descriptors.
type unixConn interface {
	io.Reader
	ReadMsgUnix(b, oob []byte) (n, oobn, flags int, addr *net.UnixAddr, err error)
	WriteMsgUnix(b, oob []byte, addr *net.UnixAddr) (n, oobn int, err error)
}

// maxRegion is the largest region a child maps: the offer says the size.
const maxRegion = 4 << 30

// fdReader reads a child's connection with recvmsg until the parent's
// offer has been handled, so that the descriptors passed with the offer
// are received (read(2) would drop them). It is used by the goroutine
// holding the read turn only.
type fdReader struct {
	c     unixConn
	oob   []byte
	files []*os.File // received and not yet taken; at most 2 are kept
	plain bool       // the offer was handled: plain reads from now on
}

func (r *fdReader) Read(p []byte) (int, error) {
	if r.plain {
		return r.c.Read(p)
	}
	n, oobn, _, _, err := r.c.ReadMsgUnix(p, r.oob)
	if oobn > 0 {
		for _, f := range lane.ParseRights(r.oob[:oobn]) {
			if len(r.files) < 2 {
				r.files = append(r.files, f)
			} else {
				f.Close() // more than an offer passes: not ours to keep
			}
		}
	}
	return n, err
}

// take returns the descriptors received so far and stops recvmsg.
func (r *fdReader) take() []*os.File {
	files := r.files
	r.files, r.plain = nil, true
	return files
}

func (r *fdReader) closeFiles() {
	for _, f := range r.take() {
		f.Close()
	}
}

// setupLane prepares the lane on a new connection and returns what the
// frame reader reads from. A parent offers the lane (its first frame after
// auth); a child reads with recvmsg to receive an offer. Without a Unix
// socket, or where shared memory is unavailable, nothing changes.
func (c *Conn) setupLane(rwc io.ReadWriteCloser) io.Reader {
	if !c.opts.SharedMemory {
		return rwc
	}
	uc, ok := rwc.(unixConn)
	if !ok || !lane.Supported {
		c.log.Debug("rpc: no shared-memory lane: the transport is not a Unix socket, or the platform has no memfd")
		return rwc
	}
	if c.opts.Role == RoleChild {
		c.fds = &fdReader{c: uc, oob: make([]byte, lane.RightsSpace(2))}
		return c.fds
	}
	size := c.opts.SharedMemorySize
	if size <= 0 {
		size = lane.DefaultSize
	}
	tx, err := lane.Create(size)
	if err != nil {
		c.log.Debug("rpc: no shared-memory lane", "err", err)
		return rwc
	}
	rx, err := lane.Create(size)
	if err != nil {
		tx.Close()
		c.log.Debug("rpc: no shared-memory lane", "err", err)
		return rwc
	}
	frame := wire.Header{Method: lane.OpOffer, Flags: wire.FlagLane | wire.FlagResponse, Len: lane.OfferSize}.Append(nil)
	frame = lane.Offer{Parent: uint64(size), Child: uint64(size)}.Append(frame)
	if _, _, err := uc.WriteMsgUnix(frame, lane.Rights(tx.File(), rx.File()), nil); err != nil {
		tx.Close()
		rx.Close()
		c.fail(fmt.Errorf("rpc: offer the shared-memory lane: %w", err))
		return rwc
	}
	tx.DropFile()
	rx.DropFile()
	c.offered.Store(lane.New(tx, rx, c.opts.SharedMemoryMin))
	return rwc
}

// laneFrame handles a frame with FlagLane: a control frame, or a reference.
func (c *Conn) laneFrame(f wire.Frame, background bool) readturn.Status {
	if f.Flags.Has(wire.FlagResponse) && f.ID == 0 {
		if err := c.laneControl(f); err != nil {
			c.fail(err)
			return readturn.Stopped
		}
		return readturn.Continue
	}
	l := c.lane.Load()
	if l == nil {
		c.fail(fmt.Errorf("%w: a shared-memory reference before the lane was agreed", lane.ErrProtocol))
		return readturn.Stopped
	}
	ref, err := lane.ParseRef(f.Payload)
	if err == nil {
		err = l.Check(ref, c.r.Max())
	}
	if err != nil {
		c.fail(err)
		return readturn.Stopped
	}
	h := f.Header
	h.Flags &^= wire.FlagLane
	h.Len = ref.Len
	head, err := l.Head(ref, wire.MaxHead)
	if err != nil {
		c.fail(err)
		return readturn.Stopped
	}
	skip, into := c.responseBuffer(h, head)
	if into == nil {
		skip, into = 0, make([]byte, ref.Len)
	}
	err = l.Get(ref, skip, into)
	if err == nil {
		// Queued, never written here: the reader must not block on a full
		// socket (see flushSoon).
		var rel [4]byte
		err = c.w.Queue(wire.Header{Method: lane.OpRelease, Flags: wire.FlagLane | wire.FlagResponse | c.dir},
			lane.AppendRelease(rel[:0], ref.Seq))
		c.flushSoon()
	}
	if err != nil {
		if cl := c.claimed; cl != nil {
			c.claimed = nil
			cl.finish(err)
		}
		if c.lent != nil {
			c.large.put(c.lent)
			c.lent = nil
		}
		c.fail(err)
		return readturn.Stopped
	}
	return c.route(wire.Frame{Header: h, Payload: into, Owned: true, Skipped: skip}, background)
}

// laneControl handles the lane's control frames.
func (c *Conn) laneControl(f wire.Frame) error {
	switch {
	case f.Method == lane.OpOffer && c.opts.Role == RoleChild && c.fds != nil && !c.fds.plain:
		c.acceptLane(f.Payload)
		return nil
	case (f.Method == lane.OpAccept || f.Method == lane.OpRefuse) && c.offered.Load() != nil:
		l := c.offered.Swap(nil)
		if l == nil {
			return nil // the connection is ending
		}
		if f.Method == lane.OpRefuse {
			c.log.Debug("rpc: the child refused the shared-memory lane")
			return l.Close()
		}
		c.setLane(l)
		return nil
	case f.Method == lane.OpRelease:
		l := c.lane.Load()
		if l == nil {
			return fmt.Errorf("%w: a release before the lane was agreed", lane.ErrProtocol)
		}
		return lane.ParseRelease(f.Payload, l.Release)
	}
	return fmt.Errorf("%w: unexpected control frame %d", lane.ErrProtocol, f.Method)
}

// acceptLane maps the regions of a parent's offer and accepts, or refuses
// when they are not usable: the connection then goes on without the lane.
func (c *Conn) acceptLane(payload []byte) {
	files := c.fds.take()
	refuse := func(why error) {
		for _, f := range files {
			f.Close()
		}
		c.log.Warn("rpc: refused the shared-memory lane", "err", why)
		c.write(lane.OpRefuse, wire.FlagLane|wire.FlagResponse, 0, nil)
	}
	offer, err := lane.ParseOffer(payload, maxRegion)
	if err != nil {
		refuse(err)
		return
	}
	if len(files) != 2 {
		refuse(fmt.Errorf("%w: the offer came with %d descriptors, want 2", lane.ErrProtocol, len(files)))
		return
	}
	rx, err := lane.Map(files[0], int(offer.Parent), false)
	if err != nil {
		files[1].Close()
		files = nil
		refuse(err)
		return
	}
	tx, err := lane.Map(files[1], int(offer.Child), true)
	if err != nil {
		rx.Close()
		files = nil
		refuse(err)
		return
	}
	l := lane.New(tx, rx, c.opts.SharedMemoryMin)
	// Accept first: the parent must know the lane before a reference.
	if err := c.write(lane.OpAccept, wire.FlagLane|wire.FlagResponse, 0, nil); err != nil {
		l.Close()
		return
	}
	c.setLane(l)
}

// setLane turns the lane on, unless the connection has ended.
func (c *Conn) setLane(l *lane.Lane) {
	c.mu.Lock()
	ended := c.closeErr != nil
	if !ended {
		c.lane.Store(l)
	}
	c.mu.Unlock()
	if ended {
		l.Close()
	}
}

// closeLane ends the lane when the connection ends.
func (c *Conn) closeLane() {
	if l := c.lane.Swap(nil); l != nil {
		l.Close()
	}
	if l := c.offered.Swap(nil); l != nil {
		l.Close()
	}
}

// sendLane sends a frame whose payload is parts (n bytes) through the lane
// if it is on and the payload is large enough; ok is false when the caller
// must send it through the socket.
func (c *Conn) sendLane(h wire.Header, parts [][]byte, n int) (ok bool, err error) {
	l := c.lane.Load()
	if l == nil || n < l.Min() || n > wire.AbsoluteMaxPayload {
		return false, nil
	}
	span, ok := l.Put(parts, n)
	if !ok {
		return false, nil // no room: the socket it is
	}
	h.Flags |= wire.FlagLane
	numbered := false
	err = c.w.WriteFrameFill(h, lane.RefSize, func(p []byte) { l.Ref(span, p); numbered = true })
	if err != nil && !numbered {
		l.Drop(span)
	}
	return true, err
}
