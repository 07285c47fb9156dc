package ipc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procxy/procxy/internal/readturn"
	"github.com/procxy/procxy/rpc/wire"
)

// peer is one participant as the server sees it: a client connection, or
// the server's own endpoint (local is set, nc is nil).
type peer struct {
	srv      *Server
	id       uint64
	name     string
	ident    Identity
	perms    *Permissions
	limit    *limiter
	noEcho   bool
	nc       net.Conn
	out      *outbox
	local    *localTransport
	start    time.Time
	remote   string
	lastRecv atomic.Int64
	mark     atomic.Uint64 // the routing batch that last queued output for it
	stuck    bool          // made no progress while publishers waited: nobody waits for it; guarded by out.mu
	// stallFrom and stallLevel: since when, and at which queue length, the
	// client has made no progress while publishers waited; guarded by out.mu
	stallFrom  time.Time
	stallLevel int

	mu      sync.Mutex
	subs    map[uint32]*hubSub // guarded by mu
	drops   map[uint32]uint32  // dropped messages not yet reported, by sid; guarded by out.mu
	replies *replySet          // reply subjects it may answer (restricted publishers only); guarded by mu
	closed  bool               // guarded by mu

	inMsgs, outMsgs, dropped atomic.Uint64
	done                     chan struct{} // closed when the peer is gone

	// Reading a client's connection (nil for the server's own endpoint).
	// The goroutine holding the turn owns r, rt and frames.
	turn       *readturn.Arbiter
	stopWriter chan struct{} // closed by close: the outbox's writer goroutine ends
	r          *wire.Reader
	rt         *router
	frames     int
}

// handle admits one accepted connection and starts reading it. A
// background reader (internal/readturn) reads and routes the client's
// frames; it runs a short handler of the server's own endpoint inline, and
// if that handler blocks or runs long, another goroutine takes over the
// reading after a watchdog period.
func (s *Server) handle(nc net.Conn) {
	p, r, err := s.admit(nc)
	if err != nil {
		nc.Close()
		return
	}
	p.r, p.rt = r, s.newRouter()
	p.rt.inline = true
	s.wg.Go(func() { p.out.writer(p.stopWriter) })
	p.turn.Need() // somebody reads at all times (nobody, if p is closed already)
}

// admit runs the handshake: CONNECT within AuthTimeout, authentication,
// then INFO. It registers the peer.
func (s *Server) admit(nc net.Conn) (*peer, *wire.Reader, error) {
	ctx := s.ctx
	if s.opts.AuthTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.AuthTimeout)
		defer cancel()
		nc.SetDeadline(time.Now().Add(s.opts.AuthTimeout))
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if hc, ok := nc.(interface{ HandshakeContext(context.Context) error }); ok {
		if err := hc.HandshakeContext(ctx); err != nil {
			s.log.Info("ipc: tls handshake failed", "remote", nc.RemoteAddr(), "err", err)
			s.stats.authFail.Add(1)
			return nil, nil, err
		}
	}
	f, err := readOneFrame(nc, 64<<10)
	if err != nil {
		s.log.Info("ipc: client sent no CONNECT", "remote", nc.RemoteAddr(), "err", err)
		s.stats.authFail.Add(1)
		if he := (*wire.HeaderError)(nil); errors.As(err, &he) {
			s.refuse(nc, fmt.Errorf("%w: %w", ErrProtocol, err))
		}
		return nil, nil, err
	}
	var ci connectInfo
	if f.Method != opConnect {
		err = fmt.Errorf("%w: first frame is %s, want CONNECT", ErrProtocol, opName(f.Method))
	} else {
		err = decodeInfo(f.Payload, &ci)
	}
	if err != nil {
		s.refuse(nc, err)
		return nil, nil, err
	}
	ident, user, err := s.authenticate(ctx, nc, ci)
	if err != nil {
		s.stats.authFail.Add(1)
		// Never log the token.
		s.log.Info("ipc: authentication failed", "remote", nc.RemoteAddr(), "name", ci.Name, "uid", ident.UID, "err", err)
		s.refuse(nc, err)
		return nil, nil, err
	}
	p := s.newPeer(ci.Name, ident, user)
	p.nc = nc
	p.turn = readturn.New(readturn.Config{Step: p.step, Go: s.wg.Go})
	p.remote = nc.RemoteAddr().String()
	if p.remote == "" || p.remote == "@" {
		p.remote = "unix"
	}
	p.noEcho = ci.NoEcho
	p.out = newOutbox(nc, func(err error) { p.close(err) })
	info := serverInfo{
		Version: protoVersion, ServerID: s.id, ClientID: p.id, MaxPayload: s.opts.MaxPayload,
		Heartbeat: int64(s.opts.Heartbeat), Identity: ident.Name,
	}
	// INFO goes first through the outbox, and the client is registered
	// before it is written: a client that has its INFO counts against
	// MaxConnections and is not refused afterwards, and whatever the
	// server queues for it meanwhile (a ping) follows the INFO.
	p.out.mu.Lock()
	p.out.addLocked(opInfo, 0, uint32(p.id), encodeInfo(&info))
	p.out.mu.Unlock()
	if err := s.register(p); err != nil {
		s.log.Info("ipc: client refused", "remote", nc.RemoteAddr(), "name", ci.Name, "err", err)
		s.refuse(nc, err)
		return nil, nil, err
	}
	p.out.flush(true)
	if p.isClosed() { // the write failed
		return nil, nil, fmt.Errorf("ipc: send INFO: %w", ErrClosed)
	}
	nc.SetDeadline(time.Time{})
	s.log.Info("ipc: client connected", "client", p.id, "name", p.name, "identity", ident.Name, "remote", p.remote)
	return p, wire.NewReaderSize(nc, maxFrame(s.opts.MaxPayload), 4<<10), nil
}

// refuse tells a client why it is not admitted.
func (s *Server) refuse(nc net.Conn, err error) {
	e := errInfo{Code: codeOf(err), Message: err.Error()}
	_ = wire.NewWriter(nc).WriteFrame(wire.Header{Method: opErr}, encodeInfo(&e))
}

func (s *Server) newPeer(name string, ident Identity, u *User) *peer {
	p := &peer{
		srv: s, id: s.peerSeq.Add(1), name: name, ident: ident,
		perms: s.opts.DefaultPermissions, start: time.Now(),
		subs: make(map[uint32]*hubSub), drops: make(map[uint32]uint32),
		done: make(chan struct{}), stopWriter: make(chan struct{}),
	}
	rl := s.opts.DefaultRateLimit
	if u != nil {
		if u.Permissions != nil {
			p.perms = u.Permissions
		}
		if u.RateLimit != nil {
			rl = u.RateLimit
		}
	}
	if rl != nil {
		p.limit = s.lims.get(ident.Name, rl, s.opts.MaxPayload)
	}
	if p.perms != nil && p.perms.AllowResponses {
		p.replies = newReplySet(4096)
	}
	p.lastRecv.Store(time.Now().UnixNano())
	return p
}

// admissibleLocked says why a new client cannot be registered now, if it
// cannot.
func (s *Server) admissibleLocked() error {
	if s.closed || s.shutting.Load() {
		return ErrServerShutdown
	}
	if max := s.opts.MaxConnections; max > 0 {
		n := 0
		for _, p := range s.peers {
			if p.nc != nil {
				n++
			}
		}
		if n >= max {
			return fmt.Errorf("%w: the limit is %d", ErrMaxConnections, max)
		}
	}
	return nil
}

// register adds p to the server, unless it is closed or full.
func (s *Server) register(p *peer) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerShutdown
	}
	if p.nc != nil {
		if err := s.admissibleLocked(); err != nil {
			s.mu.Unlock()
			return err
		}
	}
	s.peers[p.id] = p
	s.mu.Unlock()
	if p.nc != nil {
		s.stats.total.Add(1)
		if fn := s.opts.OnConnect; fn != nil {
			info := p.info()
			s.events.push(func() { fn(info) })
		}
	}
	return nil
}

// step reads one frame from the client and acts on it
// (readturn.Config.Step); only background readers call it.
func (p *peer) step(bool) readturn.Status {
	r, rt := p.r, p.rt
	f, err := r.ReadFrame()
	if err != nil {
		rt.flush()
		var he *wire.HeaderError
		switch {
		case errors.Is(err, io.EOF):
			err = nil
		case errors.As(err, &he):
			err = fmt.Errorf("%w: %w", ErrProtocol, err)
			p.violation(err)
		}
		p.close(err)
		return readturn.Stopped
	}
	if p.frames++; p.frames&1023 == 1 || r.Buffered() == 0 {
		p.lastRecv.Store(time.Now().UnixNano()) // heartbeats need no finer clock
	}
	rt.slot.more = r.HasFrame()
	if err := p.handle(rt, f); err != nil {
		rt.flush()
		p.violation(err)
		p.close(err)
		return readturn.Stopped
	}
	if rt.slot.sub != nil {
		// A handler of the server's own endpoint runs here: what the frame
		// routed to others goes out first, and another goroutine reads if
		// the handler takes more than a watchdog period.
		rt.flush()
		job := rt.slot.take()
		token := p.turn.BeginInline()
		job.run()
		if !p.turn.EndInline(token) {
			return readturn.Lost
		}
		return readturn.Continue
	}
	if r.Buffered() == 0 || rt.queued >= flushEvery {
		rt.flush()
		rt.stall()
	}
	return readturn.Continue
}

// violation tells the client what it did wrong before its connection is
// closed. A client that does not read gets as long as a new one gets to
// say who it is, then the connection closes anyway.
func (p *peer) violation(err error) {
	p.srv.log.Info("ipc: protocol violation", "client", p.id, "err", err)
	p.sendErr(0, err)
	p.nc.SetWriteDeadline(time.Now().Add(max(p.srv.opts.AuthTimeout, DefaultAuthTimeout)))
	p.out.flush(true)
}

// handle acts on one frame from a client.
func (p *peer) handle(rt *router, f wire.Frame) error {
	s := p.srv
	switch f.Method {
	case opPub:
		_, _, err := s.publish(rt, p, f.Payload, f.Flags, f.ID)
		return err
	case opSub:
		subj, queue, err := parseSub(f.Payload)
		if err != nil {
			return err
		}
		if err := s.subscribe(p, f.ID, string(subj), string(queue)); err != nil {
			p.sendErr(0, err)
			rt.touch(p)
		}
	case opUnsub:
		s.unsubscribe(p, f.ID)
	case opPing:
		p.out.mu.Lock()
		p.out.addLocked(opPong, 0, f.ID, nil)
		p.out.mu.Unlock()
		rt.touch(p)
	case opPong:
	case opCancel:
		s.cancelRequest(rt, p, string(f.Payload))
	case opConnect:
		return fmt.Errorf("%w: CONNECT twice", ErrProtocol)
	default:
		return fmt.Errorf("%w: unexpected %s from a client", ErrProtocol, opName(f.Method))
	}
	return nil
}

// sendErr queues an ERR frame.
func (p *peer) sendErr(id uint32, err error) {
	if p.local != nil {
		p.local.asyncError(err)
		return
	}
	e := errInfo{Code: codeOf(err), Message: err.Error()}
	b := encodeInfo(&e)
	p.out.mu.Lock()
	p.out.addLocked(opErr, 0, id, b)
	p.out.mu.Unlock()
}

// reportDropsLocked queues DROPPED frames for the messages dropped since
// the last report, if the queue has room again (caller holds out.mu).
func (p *peer) reportDropsLocked() {
	if p.stuck && p.out.pendingLocked() <= p.srv.opts.MaxPending/8 {
		p.stuck = false // it caught up
	}
	if len(p.drops) == 0 || p.out.pendingLocked() > p.srv.opts.MaxPending/2 {
		return
	}
	var n [4]byte
	for sid, c := range p.drops {
		binary.BigEndian.PutUint32(n[:], c)
		p.out.addLocked(opDropped, 0, sid, n[:])
		delete(p.drops, sid)
	}
}

// close ends the peer once: its subscriptions go, its requests are
// cancelled at their responders, and requests it was answering fail at
// their requesters.
func (p *peer) close(cause error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	subs := p.subs
	p.subs = map[uint32]*hubSub{}
	p.mu.Unlock()
	s := p.srv
	for _, sub := range subs {
		s.sl.remove(sub)
	}
	if p.turn != nil {
		p.turn.Stop()
	}
	if p.nc != nil {
		if errors.Is(cause, ErrServerShutdown) {
			// Say why before closing, so that the client's waiting requests
			// fail with the reason rather than a bare end of stream.
			p.sendErr(0, ErrServerShutdown)
			p.out.flush(false)
		}
		p.out.close()
		p.nc.Close()
		close(p.stopWriter)
	}
	rt := s.newRouter()
	s.forgetPeer(rt, p)
	rt.flush()
	s.mu.Lock()
	delete(s.peers, p.id)
	s.mu.Unlock()
	close(p.done)
	if p.nc != nil {
		s.log.Info("ipc: client disconnected", "client", p.id, "name", p.name, "err", cause)
		if fn := s.opts.OnDisconnect; fn != nil {
			info := p.info()
			s.events.push(func() { fn(info, cause) })
		}
	}
}

func (p *peer) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// flushWithin writes what is queued for the client, giving up when ctx ends.
func (p *peer) flushWithin(ctx context.Context) {
	if p.nc == nil {
		return
	}
	if dl, ok := ctx.Deadline(); ok {
		p.nc.SetWriteDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { p.nc.SetWriteDeadline(aLongTimeAgo) })
	defer stop()
	p.out.flushAll()
}

func (p *peer) info() ClientInfo {
	p.mu.Lock()
	nsubs := len(p.subs)
	p.mu.Unlock()
	p.out.mu.Lock()
	pending := p.out.pendingLocked()
	p.out.mu.Unlock()
	return ClientInfo{
		ID: p.id, Name: p.name, Identity: p.ident, Remote: p.remote, Connected: p.start,
		Subscriptions: nsubs, InMsgs: p.inMsgs.Load(), OutMsgs: p.outMsgs.Load(),
		Dropped: p.dropped.Load(), Pending: pending,
	}
}

// replySet is a bounded set of reply subjects a peer with restricted
// publish permissions may answer (NATS's allow_responses).
type replySet struct {
	max   int
	m     map[string]struct{}
	order []string
}

func newReplySet(max int) *replySet {
	return &replySet{max: max, m: make(map[string]struct{})}
}

func (r *replySet) add(s string) {
	if _, ok := r.m[s]; ok {
		return
	}
	if len(r.order) >= r.max {
		delete(r.m, r.order[0])
		r.order = r.order[1:]
	}
	r.m[s] = struct{}{}
	r.order = append(r.order, s)
}

func (r *replySet) has(s string) bool { _, ok := r.m[s]; return ok }
