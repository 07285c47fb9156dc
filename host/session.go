package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procxy/procxy/internal/supervise"
	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/transport"
)

// exitWait is how long a child whose data channel closed may take to exit
// before the channel's loss is taken for a fault of a live process.
const exitWait = 250 * time.Millisecond

// session is one child process and, once connected, its data plane. It
// lives from the start of a spawn attempt to the child's exit.
type session struct {
	m     *Module
	sup   *supervise.Child // the process; set by start before anything reads it
	token []byte
	ctl   ctlWriter

	initc chan control  // the first $init or $error line
	pongs chan struct{} // $pong lines, coalesced

	dlvAddr atomic.Pointer[string] // dlv's API, once announced (Config.Debug)

	stopHB func()        // stops the heartbeat; idempotent
	hbStop chan struct{} // closed by stopHB

	mu       sync.Mutex
	conn     *rpc.Conn // set once connected; guarded by mu
	sch      *schema   // set with conn; guarded by mu
	pipe     string    // the socket path from $init; guarded by mu
	cause    error     // why the parent ended the child; first wins; guarded by mu
	stopping bool      // Shutdown is stopping it; guarded by mu
	over     bool      // the watcher has finished; guarded by mu

	done chan struct{} // closed when the child exited and the session is over
	err  error         // why it ended (cause, or *ExitError); set before done is closed
}

// newSession makes the session of one spawn attempt; start starts its child.
func newSession(m *Module, token []byte) *session {
	s := &session{
		m:      m,
		token:  token,
		initc:  make(chan control, 1),
		pongs:  make(chan struct{}, 1),
		hbStop: make(chan struct{}),
		done:   make(chan struct{}),
	}
	s.stopHB = sync.OnceFunc(func() { close(s.hbStop) })
	return s
}

// start starts the child, whose stdout lines go through control, and the
// goroutine that waits for its exit.
func (s *session) start(path string, args, env []string) error {
	var initSeen atomic.Bool
	sup, err := s.m.startChild(path, args, env, func(line []byte, cut bool) bool {
		return s.control(line, cut, &initSeen)
	})
	if err != nil {
		return err
	}
	s.sup = sup
	s.ctl.w = sup.Proc().Stdin()
	s.m.wg.Go(s.watch)
	return nil
}

// control acts on a control line from the child's stdout (§4.6) and
// reports whether it was one; other lines are logged as output.
func (s *session) control(line []byte, cut bool, initSeen *atomic.Bool) bool {
	if s.sawDebugger(line) {
		return true
	}
	c, ok := parseControl(line)
	switch {
	case !ok || cut:
		return false
	case c.Method == "$pong":
		if s.m.pongHook != nil {
			s.m.pongHook()
		}
		select {
		case s.pongs <- struct{}{}:
		default:
		}
		return true
	case initSeen.CompareAndSwap(false, true):
		s.initc <- c
		return true
	}
	return false // a later $init or $error is ignored (§4.6); logged like output
}

// awaitInit waits for $init (§3.2 step 4) and checks it against the config.
func (s *session) awaitInit(ctx context.Context) (*schema, error) {
	name := s.m.cfg.Name
	var timeout <-chan time.Time
	if d := s.m.cfg.Policy.StartTimeout; d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case c := <-s.initc:
		if c.Method == "$error" {
			var p struct {
				Message string `json:"message"`
			}
			json.Unmarshal(c.Params, &p)
			if p.Message == "" {
				p.Message = "Unknown"
			}
			return nil, fmt.Errorf("%w: module %q: %s", ErrInitFailed, name, p.Message)
		}
		return parseInit(&s.m.cfg, c.Params)
	case <-s.done:
		return nil, fmt.Errorf("host: module %q exited before sending $init: %w", name, s.err)
	case <-timeout:
		return nil, fmt.Errorf("%w: module %q sent none within %v", ErrInitTimeout, name, s.m.cfg.Policy.StartTimeout)
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// connect dials the announced socket and starts the rpc connection, which
// sends the AUTH frame first when there is a token (§3.2 steps 6–7).
func (s *session) connect(ctx context.Context, sch *schema) error {
	s.mu.Lock()
	s.pipe = sch.pipe
	s.mu.Unlock()
	dctx, cancel := context.WithTimeoutCause(ctx, ConnectTimeout,
		fmt.Errorf("connection to %q timed out after %v", sch.pipe, ConnectTimeout))
	defer cancel()
	nc, err := transport.Dial(dctx, "unix", sch.pipe)
	if err != nil {
		if cause := context.Cause(dctx); cause != nil && dctx.Err() != nil {
			err = cause
		}
		return fmt.Errorf("host: module %q: data channel connect failed: %w", s.m.cfg.Name, err)
	}
	var rwc io.ReadWriteCloser = nc
	if s.m.wrapConn != nil {
		rwc = s.m.wrapConn(rwc)
	}
	mux := new(rpc.Mux)
	for id, name := range sch.events {
		mux.Handle(id, rpc.SendFunc(func(_ context.Context, p []byte) error {
			s.m.deliver(name, p)
			return nil
		}).WithCodec(codec.Raw).Named(name))
	}
	conn := rpc.NewConn(rwc, rpc.Options{
		IDs:        &s.m.ids,
		Role:       rpc.RoleParent,
		Token:      s.token,
		Handlers:   mux,
		MaxPayload: s.m.cfg.MaxPayload,
		Logger:     s.m.log,
		Observer:   s.m.cfg.Observer,
		Service:    s.m.cfg.Name,
		Metadata:   sch.metadata,
	})
	// Only a failed AUTH write fails the attempt: a child that drops the
	// connection right away is a data-channel loss after ready, as with
	// the reference parent (§8.5).
	if err := conn.Err(); errors.Is(err, rpc.ErrAuthWrite) {
		conn.Close()
		return fmt.Errorf("host: module %q: data channel: %w", s.m.cfg.Name, err)
	}
	s.mu.Lock()
	if s.over { // the child exited while we connected
		s.mu.Unlock()
		conn.CloseWithError(s.err)
		return s.err
	}
	s.conn, s.sch = conn, sch
	s.mu.Unlock()
	s.stopDebuggerAfter(conn.Done())
	return nil
}

// run starts the goroutines of a ready session: the data-plane monitor
// and the heartbeat.
func (s *session) run() {
	conn := s.conn
	s.m.wg.Go(func() {
		select {
		case <-conn.Done():
		case <-s.done:
			return
		}
		if s.isStopping() {
			return // Shutdown closed it
		}
		// A crashing child closes its socket just before its exit is
		// reaped: give it a moment, so that a crash is reported with its
		// exit status and not as a lost channel.
		t := time.NewTimer(exitWait)
		defer t.Stop()
		select {
		case <-s.sup.Proc().Exited():
			return
		case <-t.C:
		}
		if !s.isStopping() {
			// The data channel closed while the process lives: kill it so
			// that the crash path and restart policy apply (§3.6).
			s.kill(fmt.Errorf("%w: module %q: %w", ErrConnLost, s.m.cfg.Name, conn.Err()))
		}
	})
	if hb := s.m.cfg.Policy.Heartbeat; hb.Interval > 0 {
		s.m.wg.Go(func() {
			ping := func() error { return s.ctl.send(linePing) }
			if err := heartbeat(s.hbStop, hb.Interval, hb.Timeout, ping, s.pongs); err != nil {
				s.kill(fmt.Errorf("%w: module %q", err, s.m.cfg.Name))
			}
		})
	}
}

func (s *session) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

// kill ends the child because of cause: pending calls fail at once with
// it, then the process gets SIGKILL. A kill during Shutdown, or after
// another kill, keeps the first cause.
func (s *session) kill(cause error) {
	s.mu.Lock()
	if s.cause == nil {
		s.cause = cause
	}
	cause, conn := s.cause, s.conn
	s.mu.Unlock()
	s.stopHB()
	if conn != nil {
		conn.CloseWithError(cause)
	}
	if err := s.sup.Kill(cause); err != nil {
		s.m.log.Warn("host: kill failed", "pid", s.sup.PID(), "err", err)
	}
}

// abandon ends a session that never became ready and waits for its end.
func (s *session) abandon(cause error) {
	s.kill(cause)
	<-s.done
}

// stop is the graceful shutdown of §3.4, steps 3–6, preceded by a drain:
// calls and streams in flight may finish within grace (as net/http's
// Shutdown lets requests finish), while new ones fail; those still
// running then fail with ErrShutdown as the reference parent's do. Then
// $shutdown, and up to grace for the child to exit before the kill.
func (s *session) stop(ctx context.Context, grace time.Duration) error {
	s.mu.Lock()
	s.stopping = true
	if s.cause == nil {
		s.cause = fmt.Errorf("%w: module %q", ErrShutdown, s.m.cfg.Name)
	}
	cause, conn := s.cause, s.conn
	s.mu.Unlock()
	s.stopHB()
	if conn != nil {
		if grace > 0 {
			dctx, cancel := context.WithTimeoutCause(ctx, grace, cause)
			conn.Shutdown(dctx) // when it gives up, the calls left fail with cause
			cancel()
		}
		conn.CloseWithError(cause)
	}
	s.ctl.send(lineShutdown) // a failed write is ignored: the kill follows
	err := s.sup.Stop(ctx, grace, nil)
	<-s.done
	return err
}

// watch waits for the child's exit, fails everything pending with the
// reason, and reports the end to the module.
func (s *session) watch() {
	<-s.sup.Exited()
	exit := s.sup.Err()

	s.mu.Lock()
	s.err = exit
	if s.cause != nil {
		s.err = s.cause
	}
	s.over = true
	asked := s.stopping
	conn, pipe := s.conn, s.pipe
	s.mu.Unlock()
	s.stopHB()
	if conn != nil {
		conn.CloseWithError(s.err)
	}
	if pipe != "" {
		removeSocket(pipe) // a killed child may leave it behind (§13.25)
	}
	s.m.observeExit(s.sup.PID(), s.err, asked)
	close(s.done)
	s.m.sessionEnded(s)
}

// wrap turns the error of a call on this session into what the caller
// sees: when the connection ended, the reason the session ended (for a
// crash, the *ExitError); when the call's own timeout fired, the timeout.
func (s *session) wrap(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, rpc.ErrClosed) {
		s.mu.Lock()
		cause := s.cause
		s.mu.Unlock()
		if cause != nil { // we ended it: Shutdown, heartbeat, lost channel
			return fmt.Errorf("%w: %w", rpc.ErrClosed, cause)
		}
		// The socket often closes just before the exit is reaped; wait for
		// the session to know why, within bounds.
		t := time.NewTimer(supervise.ExitWait)
		defer t.Stop()
		select {
		case <-s.done:
			if errors.Is(s.err, rpc.ErrClosed) { // the *ExitError, as procxy's calls get it
				return s.err
			}
			return fmt.Errorf("%w: %w", rpc.ErrClosed, s.err)
		case <-ctx.Done():
		case <-t.C:
		}
		return err
	}
	return err
}

// removeSocket removes path if it is a socket file.
func removeSocket(path string) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().Type() == fs.ModeSocket {
		os.Remove(path)
	}
}
