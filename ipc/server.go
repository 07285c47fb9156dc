package ipc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procxy/procxy/internal/backoff"
)

// ServerOptions is a server's configuration, filled by [ServerOption]
// values. Each zero field means its default.
type ServerOptions struct {
	MaxPayload     int           // largest message (headers + data); default DefaultMaxPayload
	MaxPending     int           // bytes queued for one client before its messages are dropped; default DefaultMaxPending
	MaxConnections int           // 0: unlimited
	AuthTimeout    time.Duration // a client must send CONNECT within it; default DefaultAuthTimeout, negative: no limit
	Heartbeat      time.Duration // ping interval; a client silent for 3 is dropped; negative: off
	TLS            *tls.Config   // for tls:// addresses

	// Users lists who may connect. Empty: anyone who can reach the socket,
	// named by peer uid or certificate subject (see Identity).
	Users []User
	// Authenticate, if set, decides instead of Users.
	Authenticate func(ctx context.Context, c ConnInfo) (*User, error)
	// DefaultPermissions apply to identities whose User has none; nil
	// allows everything.
	DefaultPermissions *Permissions
	// DefaultRateLimit applies to identities whose User has none; nil: none.
	DefaultRateLimit *RateLimit

	// OnConnect and OnDisconnect are called, in order, on one goroutine,
	// as clients come and go.
	OnConnect    func(ClientInfo)
	OnDisconnect func(ClientInfo, error)

	Logger      *slog.Logger // connection and auth events at info, the rest at debug; nil means slog.Default()
	Observer    Observer     // the server's own endpoint's hooks
	DeadLetters int          // entries kept by the server's own endpoint; negative: none
}

// MaxPayload sets the largest message (headers and data) the server accepts.
func MaxPayload(n int) ServerOption { return serverOpt(func(o *ServerOptions) { o.MaxPayload = n }) }

// MaxPending sets how many bytes may wait for one client before messages
// to it are dropped (and reported to it as ErrSlowConsumer).
func MaxPending(n int) ServerOption { return serverOpt(func(o *ServerOptions) { o.MaxPending = n }) }

// MaxConnections bounds the connected clients.
func MaxConnections(n int) ServerOption {
	return serverOpt(func(o *ServerOptions) { o.MaxConnections = n })
}

// AuthTimeout sets how long a new connection may take to say who it is;
// negative means no limit, which lets a silent connection hold its slot.
func AuthTimeout(d time.Duration) ServerOption {
	return serverOpt(func(o *ServerOptions) { o.AuthTimeout = d })
}

// Users sets who may connect and what each may do.
func Users(u ...User) ServerOption { return serverOpt(func(o *ServerOptions) { o.Users = u }) }

// Authenticate sets a custom authentication function.
func Authenticate(fn func(context.Context, ConnInfo) (*User, error)) ServerOption {
	return serverOpt(func(o *ServerOptions) { o.Authenticate = fn })
}

// DefaultPermissions sets the permissions of identities without their own.
func DefaultPermissions(p Permissions) ServerOption {
	return serverOpt(func(o *ServerOptions) { o.DefaultPermissions = &p })
}

// DefaultRateLimit sets the rate limit of identities without their own.
func DefaultRateLimit(r RateLimit) ServerOption {
	return serverOpt(func(o *ServerOptions) { o.DefaultRateLimit = &r })
}

// OnConnect sets the callback for clients connecting.
func OnConnect(fn func(ClientInfo)) ServerOption {
	return serverOpt(func(o *ServerOptions) { o.OnConnect = fn })
}

// OnDisconnect sets the callback for clients going away, with why.
func OnDisconnect(fn func(ClientInfo, error)) ServerOption {
	return serverOpt(func(o *ServerOptions) { o.OnDisconnect = fn })
}

// Server is the hub that independent processes connect to: it routes
// messages between its clients with NATS's semantics, tracks requests so
// that a requester's cancellation or death reaches the responder (and a
// responder's death reaches the requester), enforces authentication,
// permissions and rate limits, and never lets one slow client hold up the
// others. Code in the server process takes part through [Server.Conn].
//
// A Server is safe for concurrent use.
type Server struct {
	opts ServerOptions
	log  *slog.Logger
	id   string
	sl   *sublist
	lims limiters

	peerSeq  atomic.Uint64
	batchSeq atomic.Uint64
	start    time.Time

	mu        sync.Mutex
	peers     map[uint64]*peer // guarded by mu
	listeners []net.Listener   // guarded by mu
	addrs     []string         // guarded by mu
	closed    bool             // guarded by mu
	shutting  atomic.Bool      // Shutdown began: new requests are refused

	reqMu sync.Mutex
	reqs  map[string]*tracked // requests in flight by reply subject; guarded by reqMu
	idle  chan struct{}       // closed when reqs becomes empty; guarded by reqMu

	local *localTransport
	conn  *Conn

	stats  serverCounters
	events eventQueue
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Listen starts a server listening on addr (see the address forms in the
// package documentation) and serving in the background until Shutdown or
// Close. For more listeners, call [Server.Serve] with them.
func Listen(ctx context.Context, addr string, opts ...ServerOption) (*Server, error) {
	a, err := parseAddr(addr)
	if err != nil {
		return nil, err
	}
	s, err := NewServer(opts...)
	if err != nil {
		return nil, err
	}
	ln, name, err := a.listen(ctx, s.opts.TLS)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("ipc: listen %s: %w", addr, err)
	}
	s.serve(ln, name)
	return s, nil
}

// NewServer returns a server with no listener yet; give it one with Serve.
func NewServer(opts ...ServerOption) (*Server, error) {
	var o ServerOptions
	for _, opt := range opts {
		if opt != nil {
			opt.applyServer(&o)
		}
	}
	if o.MaxPayload <= 0 {
		o.MaxPayload = DefaultMaxPayload
	}
	if o.MaxPending <= 0 {
		o.MaxPending = DefaultMaxPending
	}
	if o.AuthTimeout == 0 {
		o.AuthTimeout = DefaultAuthTimeout
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	for _, u := range o.Users {
		if u.Token == "" && u.UID == nil && u.CertSubject == "" {
			return nil, fmt.Errorf("ipc: user %q has no token, uid or certificate subject", u.Name)
		}
		if u.Permissions != nil {
			if err := u.Permissions.validate(); err != nil {
				return nil, err
			}
		}
	}
	if o.DefaultPermissions != nil {
		if err := o.DefaultPermissions.validate(); err != nil {
			return nil, err
		}
	}
	s := &Server{
		opts: o, log: o.Logger, id: newID(), sl: newSublist(),
		start: time.Now(),
		peers: make(map[uint64]*peer),
		reqs:  make(map[string]*tracked),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.events.init(&s.wg)
	s.local = &localTransport{srv: s}
	copts := []Option{connOpt(func(co *Options) {
		co.Name = "server"
		co.Observer = o.Observer
		co.DeadLetters = o.DeadLetters
		co.Logger = o.Logger
		co.Heartbeat = -1
	})}
	c, err := NewConn(context.Background(), s.local, copts...)
	if err != nil {
		return nil, err
	}
	s.conn = c
	if o.Heartbeat > 0 {
		s.wg.Go(s.heartbeat)
	}
	return s, nil
}

// Conn returns the server's own endpoint: a Conn through which code in the
// server process publishes, subscribes, serves requests and calls clients,
// exactly as a client would. It is closed by Close and drained by Shutdown.
func (s *Server) Conn() *Conn { return s.conn }

// Addr returns the address of the first listener ("" if none), in a form
// Dial accepts.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.addrs) == 0 {
		return ""
	}
	return s.addrs[0]
}

// Serve accepts connections on ln until ctx ends, Shutdown or Close; it
// then closes ln and returns. TLS listeners work as they are.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	done := s.serve(ln, ln.Addr().String())
	<-done
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return ErrClosed
}

// serve starts accepting on ln and returns a channel closed when it stops.
func (s *Server) serve(ln net.Listener, name string) <-chan struct{} {
	done := make(chan struct{})
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		close(done)
		return done
	}
	s.listeners = append(s.listeners, ln)
	s.addrs = append(s.addrs, name)
	s.mu.Unlock()
	s.wg.Go(func() {
		defer close(done)
		s.acceptLoop(ln)
	})
	return done
}

// acceptRetry is the wait after consecutive failed accepts (out of
// descriptors and the like): 5 ms doubling up to 1 s, as net/http does.
var acceptRetry = backoff.Exponential{Base: 5 * time.Millisecond, Max: time.Second}

func (s *Server) acceptLoop(ln net.Listener) {
	failed := 0
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() || errors.Is(err, net.ErrClosed) {
				return
			}
			failed++
			wait := acceptRetry.Delay(failed, 0)
			s.log.Warn("ipc: accept failed", "err", err, "retry_in", wait)
			if backoff.Sleep(s.ctx, wait) != nil {
				return
			}
			continue
		}
		failed = 0
		s.wg.Go(func() { s.handle(nc) })
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Shutdown stops the server gracefully: it stops accepting connections
// and refuses new requests (ErrServerShutdown), lets requests in flight
// finish, drains its own endpoint, flushes what is queued for each client,
// then closes every connection. If ctx ends first, it closes at once and
// returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.shutting.Store(true)
	s.closeListeners()
	var errs []error
	if err := s.waitRequests(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := s.conn.Drain(ctx); err != nil && ctx.Err() == nil {
		errs = append(errs, err)
	}
	for _, p := range s.snapshotPeers() {
		p.flushWithin(ctx)
	}
	errs = append(errs, s.Close())
	return errors.Join(errs...)
}

// waitRequests waits until no request is in flight, or ctx ends.
func (s *Server) waitRequests(ctx context.Context) error {
	s.reqMu.Lock()
	if len(s.reqs) == 0 {
		s.reqMu.Unlock()
		return nil
	}
	if s.idle == nil {
		s.idle = make(chan struct{})
	}
	idle := s.idle
	s.reqMu.Unlock()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Server) closeListeners() {
	s.mu.Lock()
	lns := s.listeners
	s.listeners = nil
	s.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
}

// Close closes the server at once: listeners, every client connection and
// the server's own endpoint. It waits for the server's goroutines. It is
// idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.shutting.Store(true)
	s.cancel()
	s.closeListeners()
	for _, p := range s.snapshotPeers() {
		p.close(ErrServerShutdown)
	}
	err := s.conn.Close()
	s.events.close()
	s.wg.Wait()
	return err
}

func (s *Server) snapshotPeers() []*peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := make([]*peer, 0, len(s.peers))
	for _, p := range s.peers {
		ps = append(ps, p)
	}
	return ps
}

// Broadcast sends a message to every connected client's OnBroadcast
// handler, whatever it subscribes to.
func (s *Server) Broadcast(subject string, data []byte) error {
	if err := checkSubject(subject, false); err != nil {
		return err
	}
	return s.conn.publish(&Msg{Subject: subjectBroadcast + "." + subject, Data: data}, 0)
}

// ClientInfo describes a connected client.
type ClientInfo struct {
	ID            uint64
	Name          string
	Identity      Identity
	Remote        string
	Connected     time.Time
	Subscriptions int
	InMsgs        uint64
	OutMsgs       uint64
	Dropped       uint64 // messages dropped because the client did not keep up
	Pending       int    // bytes queued for it now
}

// Clients lists the connected clients.
func (s *Server) Clients() []ClientInfo {
	var out []ClientInfo
	for _, p := range s.snapshotPeers() {
		if p.nc != nil { // not the server's own endpoint
			out = append(out, p.info())
		}
	}
	return out
}

// ServerStats are a server's counters since it started.
type ServerStats struct {
	Connections      int    // connected now
	TotalConnections uint64 // ever accepted and authenticated
	AuthFailures     uint64
	InMsgs, InBytes  uint64 // messages received from clients
	OutMsgs          uint64 // messages delivered to clients
	OutBytes         uint64
	SlowDrops        uint64 // messages dropped for clients that did not keep up
	Denied           uint64 // publishes and subscriptions refused by permissions
	RateLimited      uint64
	NoResponders     uint64
	Subscriptions    int
	RequestsInFlight int
	Uptime           time.Duration
}

type serverCounters struct {
	total, authFail, inMsgs, inBytes, outMsgs, outBytes atomic.Uint64
	slow, denied, limited, noResp                       atomic.Uint64
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	s.mu.Lock()
	n := 0
	for _, p := range s.peers {
		if p.nc != nil {
			n++
		}
	}
	s.mu.Unlock()
	s.reqMu.Lock()
	inflight := len(s.reqs)
	s.reqMu.Unlock()
	s.sl.mu.RLock()
	subs := s.sl.count
	s.sl.mu.RUnlock()
	c := &s.stats
	return ServerStats{
		Connections: n, TotalConnections: c.total.Load(), AuthFailures: c.authFail.Load(),
		InMsgs: c.inMsgs.Load(), InBytes: c.inBytes.Load(), OutMsgs: c.outMsgs.Load(), OutBytes: c.outBytes.Load(),
		SlowDrops: c.slow.Load(), Denied: c.denied.Load(), RateLimited: c.limited.Load(), NoResponders: c.noResp.Load(),
		Subscriptions: subs, RequestsInFlight: inflight, Uptime: time.Since(s.start),
	}
}

// heartbeat pings every client each interval and drops those silent for
// three (see watchSilence).
func (s *Server) heartbeat() {
	d := s.opts.Heartbeat
	ping := func() {
		for _, p := range s.snapshotPeers() {
			if p.nc == nil {
				continue
			}
			p.out.mu.Lock()
			p.out.addLocked(opPing, 0, 0, nil)
			p.reportDropsLocked()
			p.out.mu.Unlock()
			p.out.flush(false)
		}
	}
	check := func(now time.Time) time.Duration {
		next := 3 * d
		for _, p := range s.snapshotPeers() {
			if p.nc == nil {
				continue
			}
			silent := now.Sub(time.Unix(0, p.lastRecv.Load()))
			if silent >= 3*d {
				s.log.Info("ipc: client missed 3 heartbeats", "client", p.id, "name", p.name)
				p.close(fmt.Errorf("%w: missed 3 heartbeats", ErrConnectionLost))
				continue
			}
			next = min(next, 3*d-silent)
		}
		return next
	}
	watchSilence(s.ctx, d, ping, check)
}
