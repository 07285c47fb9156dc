package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procxy/procxy/observe"
	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/wire"
	"github.com/procxy/procxy/transport"
)

// TokenEnv is the environment variable a Procwire parent uses to pass the
// per-spawn authentication token (protocol §8.3).
const TokenEnv = "PROCWIRE_TOKEN"

// Errors returned by the worker. Each is returned wrapped; test with errors.Is.
var (
	// ErrNotConnected is returned by [Emitter.Emit] before the parent's
	// connection has been adopted (authenticated, when a token is set).
	ErrNotConnected = errors.New("worker: no parent connection yet")
	// ErrRunning is returned by a second call of [Worker.Run].
	ErrRunning = errors.New("worker: Run called twice")
	// ErrStopGrace is returned by Run when handlers were still running
	// [Options.StopGrace] after the session ended and their contexts were
	// cancelled.
	ErrStopGrace = errors.New("worker: handlers still running after the stop grace")
)

// Options configures a Worker. The zero value is valid; each zero field
// means its default.
type Options struct {
	// Logger receives the worker's diagnostics: rejected connections,
	// protocol violations, why the session ended, failures of
	// fire-and-forget handlers. nil means a text logger on os.Stderr,
	// because stdout belongs to the control plane; pass a logger with
	// slog.DiscardHandler to silence it.
	Logger *slog.Logger
	// MaxPayload is the largest payload accepted from the parent; zero or
	// negative means 1 GiB, and it is clamped to 2 GiB − 1. A larger frame
	// closes the connection before anything is allocated.
	MaxPayload int
	// Token, when non-nil, is the authentication token: the parent's first
	// frame must be the auth frame carrying exactly these bytes (an empty
	// token is a token). nil means the value of PROCWIRE_TOKEN if that
	// variable is set, even to the empty string, and no authentication if
	// it is not — the rules of the reference child.
	Token []byte
	// AuthTimeout bounds how long an accepted connection may take to send
	// its auth frame before it is closed and the worker accepts another.
	// Zero means 10 s; negative means no limit (the reference child has
	// none, so a silent local process could hold the only slot forever).
	// Ignored without a token.
	AuthTimeout time.Duration
	// StopGrace bounds how long Run waits, once the session has ended,
	// for running handlers to return after their contexts were cancelled.
	// Zero means 2 s (less than the parent's 5 s grace before SIGKILL);
	// negative means wait for ever.
	StopGrace time.Duration
	// MaxHandlers bounds the request handlers running at once; at the limit
	// the connection stops reading. Zero means the rpc default (65536).
	MaxHandlers int
	// Observer sees every call the worker serves — method, duration, bytes
	// each way, error — and every event it emits (package observe); nil
	// means none. With an Observer the worker announces in $init that it
	// takes request metadata, so a procxy parent with an Observer sends
	// each call's trace context, which the Observer finds in the call's
	// Carrier. A Procwire (Node.js) parent ignores the announcement.
	Observer observe.Observer
	// Stdin and Stdout carry the control plane (JSON lines); nil means
	// os.Stdin and os.Stdout. Nothing but control lines is written to Stdout.
	Stdin  io.Reader
	Stdout io.Writer
}

// Worker is the child side of a Procwire connection: it serves the methods
// registered with [Result], [Ack], [Stream] and [None] and emits the events
// registered with [Event] to the one parent that spawned the process.
//
// Register everything, then call [Worker.Run] once. A Worker is safe for
// concurrent use: registration functions may be called from several
// goroutines before Run, and emitters from any goroutine at any time. The
// zero Worker is not usable; create one with [New].
type Worker struct {
	log   *slog.Logger
	token []byte // nil: no authentication
	opts  Options
	in    io.Reader
	out   io.Writer

	mu      sync.Mutex
	methods []*methodDef // in registration order, id = index+1; guarded by mu
	events  []*eventDef  // in registration order, id = index+1; guarded by mu
	started bool         // Run was called: registration is frozen; guarded by mu

	conn atomic.Pointer[rpc.Conn] // the adopted session, for emitters

	// session is cancelled when the session ends. Fire-and-forget handlers
	// run with it: the parent cannot abort them, and the rpc engine does not
	// cancel request-id-0 handlers when the connection ends.
	session    context.Context
	endSession context.CancelFunc

	outMu sync.Mutex // serializes writes to out, one line per Write
}

// New returns a Worker with no methods or events. It reads PROCWIRE_TOKEN
// now if opts.Token is nil.
func New(opts Options) *Worker {
	w := &Worker{opts: opts, log: opts.Logger, in: opts.Stdin, out: opts.Stdout, token: opts.Token}
	w.session, w.endSession = context.WithCancel(context.Background())
	if w.log == nil {
		w.log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if w.in == nil {
		w.in = os.Stdin
	}
	if w.out == nil {
		w.out = os.Stdout
	}
	if w.token == nil {
		if v, ok := os.LookupEnv(TokenEnv); ok {
			w.token = []byte(v)
		}
	} else {
		w.token = append([]byte{}, w.token...) // our own copy
	}
	w.opts.MaxPayload = wire.ClampMax(opts.MaxPayload)
	if w.opts.AuthTimeout == 0 {
		w.opts.AuthTimeout = 10 * time.Second
	}
	if w.opts.StopGrace == 0 {
		w.opts.StopGrace = 2 * time.Second
	}
	return w
}

// Run serves one Procwire session and returns when it is over. It freezes
// registration, listens on a private Unix socket, writes the $init line to
// stdout (only once the socket is listening), then answers $ping with $pong
// and accepts the parent's connection: exactly one, authenticated when a
// token is set; others are closed at once, and the listener (with its
// socket file) is closed as soon as a connection is adopted.
//
// The session ends on $shutdown, at the end of stdin (the parent died),
// when the adopted connection closes for any reason (the parent went away,
// or sent a frame that violates the protocol, which is logged), or when
// ctx is done. Run then cancels the contexts of running handlers, waits up
// to [Options.StopGrace] for them, removes the socket file and returns:
// nil for the first three causes, ctx.Err() for the last, or an error
// wrapping ErrStopGrace. Run returns an error at once if the socket
// cannot be created (after telling the parent why with a $error line) or
// $init cannot be written. A Worker runs once; a second Run returns
// ErrRunning.
//
// The goroutine reading stdin stops when Run returns if stdin supports
// read deadlines (a pollable *os.File); otherwise it stops at its next
// read, which in a worker process is when the process exits.
func (w *Worker) Run(ctx context.Context) error {
	w.mu.Lock()
	if w.started {
		w.mu.Unlock()
		return ErrRunning
	}
	w.started = true
	methods, events := w.methods, w.events
	w.mu.Unlock()
	defer w.endSession()
	if err := ctx.Err(); err != nil {
		return err
	}
	mux := new(rpc.Mux)
	for i, m := range methods {
		mux.Handle(uint16(i+1), m.handler.Named(m.name))
	}

	ln, err := transport.ListenPrivate("procwire")
	if err != nil {
		err = fmt.Errorf("worker: listen: %w", err)
		// $error fails the parent's spawn attempt with this reason (§4.7).
		w.writeLine(appendErrorLine(nil, err.Error()))
		return err
	}
	defer ln.Close()
	if err := w.writeLine(appendInit(nil, ln.Path(), methods, events, w.opts.Observer != nil)); err != nil {
		return fmt.Errorf("worker: write $init: %w", err)
	}

	ctl := w.startControl()
	defer ctl.stop()
	acc := w.startAccept(ln)
	defer acc.stop()

	var (
		conn     *rpc.Conn
		connDone <-chan struct{}
		result   error
	)
loop:
	for {
		select {
		case c := <-acc.adopted:
			conn = rpc.NewConn(c, rpc.Options{
				Role:        rpc.RoleChild,
				Handlers:    mux,
				MaxPayload:  w.opts.MaxPayload,
				MaxHandlers: w.opts.MaxHandlers,
				Logger:      w.log,
				Observer:    w.opts.Observer,
				Service:     os.Getenv(envModuleName),
				Metadata:    w.opts.Observer != nil,
			})
			w.conn.Store(conn) // handlers reach it through rpc.ConnOf before this
			connDone = conn.Done()
			w.log.Debug("worker: parent connected")
		case <-connDone:
			w.logConnEnd(conn.Err())
			break loop
		case why := <-ctl.ended:
			w.log.Debug("worker: session ended", "reason", why)
			break loop
		case err := <-acc.failed:
			result = fmt.Errorf("worker: accept: %w", err)
			break loop
		case <-ctx.Done():
			result = ctx.Err()
			break loop
		}
	}
	ln.Close() // removes the socket file at once, before the drain
	acc.stop()
	w.endSession()
	if conn != nil {
		if err := w.drain(conn); err != nil {
			result = err
		}
	}
	return result
}

// logConnEnd says why the adopted connection ended.
func (w *Worker) logConnEnd(err error) {
	var he *wire.HeaderError
	switch {
	case errors.As(err, &he):
		w.log.Warn("worker: closed the connection: the parent sent an invalid frame", "err", err)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		w.log.Debug("worker: the parent closed the connection")
	default:
		w.log.Warn("worker: connection lost", "err", err)
	}
}

// drain closes the session's connection, which cancels the contexts of
// running handlers (the reference child drops its connection on $shutdown
// too), and waits for them up to StopGrace. A handler that ignores its
// context is left to return on its own (or die with the process).
func (w *Worker) drain(conn *rpc.Conn) error {
	if w.opts.StopGrace < 0 {
		return conn.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.opts.StopGrace)
	defer cancel()
	if err := conn.CloseContext(ctx); err != nil {
		w.log.Error("worker: handlers ignore their cancelled context; giving up on them",
			"grace", w.opts.StopGrace)
		return fmt.Errorf("%w (%v)", ErrStopGrace, w.opts.StopGrace)
	}
	return nil
}

// writeLine writes one control line (b must end in LF) with a single Write.
func (w *Worker) writeLine(b []byte) error {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	_, err := w.out.Write(b)
	return err
}
