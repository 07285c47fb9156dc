package procxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/procxy/procxy/internal/supervise"
	"github.com/procxy/procxy/observe"
	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/transport"
)

// Proxy is a T that lives in a child process. Call its methods with Call
// and Stream, or through stubs written by `procxy gen`. A Proxy is safe for
// concurrent use; calls run concurrently in the child unless the proxy was
// made with Serialized.
type Proxy[T any] struct {
	o      options
	cfg    []byte // the encoded config
	events listeners

	mu     sync.Mutex
	cur    *session // the live child; nil after Close or before a restart
	closed bool     // Close or Kill was called
	err    error    // why the proxy ended; guarded by mu
	// lastExit is why the last child ended, for the Observer's restart
	// event; guarded by mu.
	lastExit error

	done     chan struct{}
	doneOnce sync.Once
}

// session is one child process and its connection.
type session struct {
	child   *child
	conn    *rpc.Conn
	pid     int // the process started (dlv's, under Debug)
	ownPID  int // the process serving, as it reported itself; set before the session is published
	methods map[string]*method
	exited  chan struct{} // closed once exitErr is set
	exitErr *ExitError
	watched chan struct{} // closed when watch has returned
	cbs     callbacks     // funcs passed to calls in progress
}

// New starts a child process, constructs a T in it with the constructor
// given to Register, and returns the proxy. ctx bounds the start only; the
// child lives until Close, Kill, or the parent's exit. A constructor error
// in the child is New's error.
func New[T any](ctx context.Context, opts ...Option) (*Proxy[T], error) {
	o := newOptions(keyOf(reflect.TypeFor[T]()), opts)
	return newProxy[T](ctx, o)
}

func newProxy[T any](ctx context.Context, o options) (*Proxy[T], error) {
	if os.Getenv(envChild) != "" {
		return nil, fmt.Errorf("procxy: New called in a child before procxy.Main: %w", ErrNoMain)
	}
	p := &Proxy[T]{o: o, done: make(chan struct{})}
	p.events.log = o.logger.Warn
	p.events.forward = o.forward
	if o.hasConfig {
		var err error
		if p.cfg, err = msgpackCodec.Append(nil, o.config); err != nil {
			return nil, fmt.Errorf("procxy: config for %s cannot be sent to the child: %w", o.key, err)
		}
		if c := lookup(o.key); c != nil && c.cfg != nil {
			if err := msgpackCodec.Unmarshal(p.cfg, reflect.New(c.cfg).Interface()); err != nil {
				return nil, fmt.Errorf("procxy: config %T does not fit %s's constructor (%v): %w", o.config, o.key, c.cfg, err)
			}
		}
	}
	s, err := p.start(ctx)
	if err != nil {
		return nil, err
	}
	p.mu.Lock() // the session's watcher may already look at p.cur
	p.cur = s
	p.mu.Unlock()
	return p, nil
}

// start spawns a child (or attaches to one, with Attach) and constructs
// the object in it.
func (p *Proxy[T]) start(ctx context.Context) (*session, error) {
	if p.o.attach != "" {
		return p.attach(ctx)
	}
	c, err := spawn(&p.o)
	if err != nil {
		return nil, err
	}
	nc, err := transport.FileConn(c.conn)
	c.conn.Close()
	if err != nil {
		c.sup.Kill(nil)
		return nil, err
	}
	s := p.newSession(c, c.sup.PID(), nc)
	p.observeChild(observe.ChildSpawn, s.pid, nil)
	if p.o.debug != nil {
		c.stopDebuggerAfter(s.conn.Done())
	}
	go p.watch(s)
	return p.construct(ctx, s)
}

// newSession starts the parent's end of the connection to a child.
func (p *Proxy[T]) newSession(c *child, pid int, nc io.ReadWriteCloser) *session {
	mux := new(rpc.Mux)
	s := &session{child: c, pid: pid, exited: make(chan struct{}), watched: make(chan struct{})}
	mux.Handle(idEvent, rpc.SendFunc(p.events.dispatch).Named("$event"))
	mux.Handle(idCallback, rpc.ResultFunc(s.cbs.serve).Named("$callback"))
	s.conn = rpc.NewConn(nc, rpc.Options{Role: rpc.RoleParent, Handlers: mux, Logger: p.o.logger, SharedMemory: !p.o.noLane, Codec: msgpackCodec,
		Observer: p.o.observer, Service: p.o.key, Metadata: true})
	return s
}

// construct constructs the object in the session's child.
func (p *Proxy[T]) construct(ctx context.Context, s *session) (*session, error) {

	if p.o.startTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.o.startTimeout)
		defer cancel()
	}
	var sc schema
	err := s.conn.Call(ctx, rpc.Method{ID: idNew, Name: "$new"}, newRequest{Key: p.o.key, Config: p.cfg, Serialized: p.o.serialized}, &sc)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			err = fmt.Errorf("procxy: start %s: no answer within %v: %w", p.o.key, p.o.startTimeout, ErrNoMain)
		} else if errors.Is(err, rpc.ErrClosed) {
			err = fmt.Errorf("procxy: start %s: %w", p.o.key, s.explain(err))
		} else {
			err = fmt.Errorf("procxy: construct %s: %w", p.o.key, err)
		}
		s.stop(0, nil)
		return nil, err
	}
	s.ownPID = sc.PID
	s.methods = make(map[string]*method, len(sc.Methods))
	for _, m := range sc.Methods {
		s.methods[m.Name] = m
	}
	p.recycle(s)
	return s, nil
}

// watch waits for the child to exit and fails everything pending with the
// exit status. It owns the session's end.
func (p *Proxy[T]) watch(s *session) {
	defer close(s.watched)
	<-s.child.sup.Exited()
	e := s.child.sup.Err()
	recycled := errors.Is(e, ErrRecycled)
	p.mu.Lock()
	p.lastExit = e
	asked := p.closed
	s.exitErr = e
	ended := p.cur == s && !p.closed && p.o.retries == 0 && !recycled
	if p.cur == s {
		p.cur = nil // the next call starts a new child, if retries or recycling allow
	}
	if ended && p.err == nil {
		p.err = e
	}
	p.mu.Unlock()
	p.observeExit(s, e, asked)
	close(s.exited)
	s.conn.CloseWithError(e)
	if ended {
		p.doneOnce.Do(func() { close(p.done) })
	}
}

// explain turns a closed-connection error into the child's exit error when
// the child is exiting.
func (s *session) explain(err error) error {
	if !errors.Is(err, rpc.ErrClosed) || s.child.sup == nil {
		return err
	}
	t := time.NewTimer(supervise.ExitWait)
	defer t.Stop()
	select {
	case <-s.exited:
		if errors.Is(err, rpc.ErrNotSent) {
			return fmt.Errorf("%w: %w", rpc.ErrNotSent, s.exitErr)
		}
		return s.exitErr
	case <-t.C:
		return err
	}
}

// stop ends the session: close the connection (the child exits on EOF),
// wait up to grace, then kill with cause.
func (s *session) stop(grace time.Duration, cause error) {
	s.conn.Close()
	if s.child.sup != nil { // else attached: not ours to stop
		s.child.sup.Stop(context.Background(), grace, cause)
	}
	<-s.watched
}

// session returns the live session, starting a new child if the last one
// died and the proxy has retries.
func (p *Proxy[T]) session(ctx context.Context) (*session, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.closed:
		return nil, ErrClosed
	case p.cur != nil:
		return p.cur, nil
	case p.err != nil:
		return nil, p.err
	}
	p.observeChild(observe.ChildRestart, 0, p.lastExit)
	s, err := p.start(ctx) // under mu: one restart at a time
	if err != nil {
		return nil, err
	}
	p.cur = s
	return s, nil
}

// Close ends the child gracefully: it closes the connection, waits for the
// child to exit (up to StopGrace), then kills it. Calls after Close fail
// with ErrClosed. Close is idempotent.
func (p *Proxy[T]) Close() error { return p.shut(p.o.stopGrace) }

// Kill ends the child at once with SIGKILL. Calls after Kill fail with ErrClosed.
func (p *Proxy[T]) Kill() error { return p.shut(0) }

func (p *Proxy[T]) shut(grace time.Duration) error {
	p.mu.Lock()
	s := p.cur
	first := !p.closed
	p.closed, p.cur = true, nil
	if first && p.err == nil {
		p.err = ErrClosed
	}
	p.mu.Unlock()
	if s != nil {
		s.stop(grace, nil)
	}
	p.doneOnce.Do(func() { close(p.done) })
	return nil
}

// Done is closed when the proxy has ended: by Close or Kill, or because the
// child died and the proxy has no retries.
func (p *Proxy[T]) Done() <-chan struct{} { return p.done }

// Err says why the proxy ended (ErrClosed, or the child's *ExitError), or
// nil while it is live. It is set as soon as the end is known, a moment
// before Done is closed.
func (p *Proxy[T]) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Process returns the current child process, or nil when there is none.
func (p *Proxy[T]) Process() *os.Process {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return nil
	}
	proc, _ := os.FindProcess(p.cur.ownPID)
	return proc
}

// Methods lists the methods the child's type has, by name.
func (p *Proxy[T]) Methods() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return nil
	}
	names := make([]string, 0, len(p.cur.methods))
	for name := range p.cur.methods {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
