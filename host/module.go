package host

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/procxy/procxy/internal/supervise"
	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
)

// Module is the parent's handle on one worker: it spawns the child,
// watches it and restarts it per Policy, and carries the calls of [Call],
// [Stream] and [Send] and the events of [OnEvent]. A Module is safe for
// concurrent use. It can be used alone or registered with a [Manager].
//
// Its goroutines exist while a child runs (output readers, exit watcher,
// heartbeat) or a restart is pending; after Shutdown returns, none is left
// except, briefly, the one delivering the last changes to OnChange.
type Module struct {
	cfg     Config
	log     *slog.Logger // cfg.Logger tagged with the module's name
	methods map[string]*Method
	events  map[string]*Event
	changes notifier

	mu          sync.Mutex
	state       State                    // guarded by mu
	err         error                    // the error of the last change; guarded by mu
	sess        *session                 // the ready child, or nil; guarded by mu
	gen         uint64                   // bumped by Spawn; a stale restart checks it; guarded by mu
	cancelStart context.CancelCauseFunc  // stops a spawn or pending restart; guarded by mu
	restarts    supervise.Limiter        // the restart budget; guarded by mu
	subs        map[string][]*subscriber // event listeners by name; guarded by mu
	mgr         *Manager                 // gets the changes too; set by Manager.Register; guarded by mu

	// ids allocates request ids for every child of the module, so that
	// they survive restarts (Procwire §5.5).
	ids rpc.IDCounter

	// wg tracks every goroutine of the module except the notifier's:
	// spawns, restarts and the goroutines of each child.
	wg sync.WaitGroup

	// Test hooks (export_test.go); never set otherwise.
	wrapConn    func(io.ReadWriteCloser) io.ReadWriteCloser // wraps each data-plane connection
	pongHook    func()                                      // called for each $pong
	noPdeathsig bool                                        // start children without it
	attemptHook func(ctx context.Context) error             // replaces attempt
}

// NewModule checks cfg, fills in its defaults on a copy and returns a
// Module in StateIdle. It starts nothing.
func NewModule(cfg Config) (*Module, error) {
	cfg, err := resolve(cfg)
	if err != nil {
		return nil, err
	}
	m := &Module{
		cfg:      cfg,
		log:      cfg.Logger.With("module", cfg.Name),
		methods:  make(map[string]*Method, len(cfg.Methods)),
		events:   make(map[string]*Event, len(cfg.Events)),
		restarts: supervise.Limiter{Max: cfg.Policy.RestartLimit.Max, Window: cfg.Policy.RestartLimit.Window},
		subs:     map[string][]*subscriber{},
	}
	for i := range m.cfg.Methods {
		m.methods[m.cfg.Methods[i].Name] = &m.cfg.Methods[i]
	}
	for i := range m.cfg.Events {
		m.events[m.cfg.Events[i].Name] = &m.cfg.Events[i]
	}
	m.changes.fn = m.dispatch
	return m, nil
}

// Name returns the module's name.
func (m *Module) Name() string { return m.cfg.Name }

// State returns the module's current state.
func (m *Module) State() State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state
}

// Err returns the error of the module's last state change: why it is
// disconnected or failed, or the last failed attempt while it is starting.
// It is nil once the module is ready, and after a clean shutdown.
func (m *Module) Err() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// PID returns the process id of the ready child, or 0.
func (m *Module) PID() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess == nil {
		return 0
	}
	return m.sess.sup.PID()
}

// Spawn starts the child and returns once it is ready: launched, $init
// received and checked against the Config, data plane connected (and
// authenticated). A failed attempt is retried per Policy; when all fail,
// Spawn returns a *SpawnError and the module is failed. A *SchemaError or
// a malformed $init is not retried. ctx bounds the whole spawn; the child
// outlives it.
//
// Spawn is allowed from the idle, closed, failed and disconnected states
// (where it replaces a pending restart); it returns nil at once for a
// ready module and ErrBusy while the module is starting or stopping.
func (m *Module) Spawn(ctx context.Context) error {
	m.mu.Lock()
	switch m.state {
	case StateReady:
		m.mu.Unlock()
		return nil
	case StateStarting, StateConnecting, StateStopping:
		st := m.state
		m.mu.Unlock()
		return fmt.Errorf("%w: spawn module %q: it is %v", ErrBusy, m.cfg.Name, st)
	}
	if m.cancelStart != nil {
		m.cancelStart(nil) // a pending restart is replaced by this spawn
	}
	ctx, cancel := context.WithCancelCause(ctx)
	m.cancelStart = cancel
	m.gen++
	m.setStateLocked(StateStarting, nil)
	res := make(chan error, 1)
	m.wg.Go(func() {
		defer cancel(nil)
		res <- m.start(ctx)
	})
	m.mu.Unlock()
	return <-res
}

// Shutdown stops the module gracefully: it cancels a spawn or pending
// restart and stops the heartbeat; new calls fail at once, while calls and
// streams in flight may finish within Config.StopGrace (those still
// running then fail with ErrShutdown); then, as Procwire §3.4 does, it
// closes the data plane, writes $shutdown to the child and waits up to
// Config.StopGrace for it to exit before killing it. When ctx ends first
// the child is killed at once and ctx's error returned.
// Shutdown returns once the child has exited and the module's goroutines
// are gone; the module is then closed and may be spawned again.
//
// Shutdown must not be called from an OnEvent callback of the same module
// (it waits for that callback); start a goroutine for it.
func (m *Module) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	if m.cancelStart != nil {
		m.cancelStart(ErrShutdown)
		m.cancelStart = nil
	}
	if m.state == StateStopping {
		m.mu.Unlock()
		m.wg.Wait() // another Shutdown is running
		return nil
	}
	if m.state == StateIdle || m.state == StateClosed {
		// Nothing runs: never spawned, or shut down already.
		if m.state != StateClosed {
			m.setStateLocked(StateClosed, nil)
		}
		m.mu.Unlock()
		return nil
	}
	// Stopping refuses Spawn, so that no goroutine is added to wg while
	// we wait for the spawn, restart and child goroutines to end.
	s := m.sess
	m.setStateLocked(StateStopping, nil)
	m.mu.Unlock()

	var err error
	if s != nil {
		start := time.Now()
		err = s.stop(ctx, m.cfg.StopGrace)
		m.log.Debug("host: module stopped", "took", time.Since(start), "pid", s.sup.PID())
	}
	m.wg.Wait()

	m.mu.Lock()
	m.sess = nil
	m.setStateLocked(StateClosed, nil)
	m.mu.Unlock()
	return err
}

// setStateLocked moves to state to and posts the change. m.mu is held.
func (m *Module) setStateLocked(to State, err error) {
	c := Change{Module: m.cfg.Name, From: m.state, To: to, Err: err, Time: time.Now()}
	if to == StateReady && m.sess != nil {
		c.PID = m.sess.sup.PID()
	}
	m.state, m.err = to, err
	m.changes.post(c)
	if m.mgr != nil {
		m.mgr.changes.post(c)
	}
}

// dispatch logs one change and delivers it to OnChange (notifier goroutine).
func (m *Module) dispatch(c Change) {
	if c.Err != nil {
		m.log.Info("host: module state", "from", c.From, "to", c.To, "err", c.Err)
	} else {
		m.log.Debug("host: module state", "from", c.From, "to", c.To)
	}
	if m.cfg.OnChange != nil {
		m.cfg.OnChange(c)
	}
}

// eventCodec returns the codec of a declared event, or msgpack.
func (m *Module) eventCodec(name string) codec.Codec {
	if ev := m.events[name]; ev != nil {
		return ev.Codec
	}
	return codec.Msgpack
}
