package host

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/procxy/procxy/internal/backoff"
	"github.com/procxy/procxy/observe"
)

// Environment variables the parent sets for the child (§8.3).
const (
	envModuleName = "PROCWIRE_MODULE_NAME"
	envToken      = "PROCWIRE_TOKEN"
)

// start runs spawn attempts until one is ready, the retries are spent or
// ctx ends (§3.2, §9.3). The module is in StateStarting.
func (m *Module) start(ctx context.Context) error {
	p := m.cfg.Policy
	var last error
	attempts := 0
	for n := 0; n <= p.MaxRetries; n++ {
		if n > 0 {
			m.mu.Lock()
			m.setStateLocked(StateStarting, last)
			m.mu.Unlock()
			if err := backoff.Sleep(ctx, p.Backoff.delay(n, backoff.Jitter())); err != nil {
				break
			}
		}
		attempts++
		attempt := m.attempt
		if m.attemptHook != nil {
			attempt = m.attemptHook
		}
		err := attempt(ctx)
		if err == nil {
			return nil
		}
		last = err
		var se *SchemaError
		if errors.As(err, &se) || errors.Is(err, ErrBadInit) || ctx.Err() != nil {
			break
		}
	}
	if ctx.Err() != nil {
		last = fmt.Errorf("%w (last attempt: %w)", context.Cause(ctx), last)
	}
	err := &SpawnError{Module: m.cfg.Name, Attempts: attempts, Err: last}
	m.mu.Lock()
	if m.state != StateStopping { // else Shutdown sets the final state
		m.setStateLocked(StateFailed, err)
	}
	m.mu.Unlock()
	return err
}

// attempt is one spawn attempt: start the child, wait for $init, check it,
// connect, authenticate and publish the session as ready. On failure the
// child is killed and waited for.
func (m *Module) attempt(ctx context.Context) error {
	var token []byte
	if m.cfg.Policy.Auth {
		var b [32]byte
		rand.Read(b[:])
		token = []byte(hex.EncodeToString(b[:]))
	}
	path, args := m.cfg.Executable, m.cfg.Args
	if m.cfg.Debug != nil {
		path, args = m.debugCommand()
	}
	s := newSession(m, token)
	if err := s.start(path, args, m.childEnv(token)); err != nil {
		return fmt.Errorf("host: module %q: %w", m.cfg.Name, err)
	}
	m.observeChild(observe.ChildSpawn, s.sup.PID(), nil)
	sch, err := s.awaitInit(ctx)
	if err == nil {
		m.mu.Lock()
		if m.state == StateStarting {
			m.setStateLocked(StateConnecting, nil)
		}
		m.mu.Unlock()
		err = s.connect(ctx, sch)
	}
	if err == nil {
		err = m.publish(ctx, s)
	}
	if err != nil {
		s.abandon(err)
		return err
	}
	return nil
}

// publish makes s the module's ready session, unless the spawn was
// cancelled or the child died meanwhile.
func (m *Module) publish(ctx context.Context, s *session) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	select {
	case <-s.done:
		return s.err
	default:
	}
	m.sess = s
	m.setStateLocked(StateReady, nil)
	s.run()
	s.sup.Recycle(func() {}, s.kill) // route turns calls away from a retired child
	return nil
}

// sessionEnded handles the end of the ready session s (its exit watcher
// calls it): unless the module is stopping, it is a crash (§3.6), and the
// module restarts or fails per policy.
func (m *Module) sessionEnded(s *session) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sess != s {
		return // an attempt that never became ready: start handles it
	}
	m.sess = nil
	if m.state == StateStopping {
		return
	}
	m.setStateLocked(StateDisconnected, s.err)
	recycled := errors.Is(s.err, ErrRecycled)
	switch {
	case recycled: // planned: no restart budget, no delay
	case !m.cfg.Policy.RestartOnCrash:
		m.setStateLocked(StateFailed, s.err)
		return
	case !m.restarts.Allow(time.Now()):
		m.setStateLocked(StateFailed, fmt.Errorf("%w: %w", ErrTooManyRestarts, s.err))
		return
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	m.cancelStart = cancel
	gen := m.gen
	m.wg.Go(func() {
		defer cancel(nil)
		m.restart(ctx, gen, recycled)
	})
}

// restart waits RestartDelay (not for a recycled child), then spawns again unless Spawn or Shutdown
// came first.
func (m *Module) restart(ctx context.Context, gen uint64, recycled bool) {
	if !recycled && backoff.Sleep(ctx, m.cfg.Policy.RestartDelay) != nil {
		return
	}
	m.mu.Lock()
	if m.gen != gen || m.state != StateDisconnected {
		m.mu.Unlock()
		return
	}
	m.setStateLocked(StateStarting, nil)
	why := m.err
	m.mu.Unlock()
	m.observeChild(observe.ChildRestart, 0, why)
	m.start(ctx) // failures end in StateFailed, reported through OnChange
}

// childEnv is the parent's environment overlaid with Config.Env, plus
// PROCWIRE_MODULE_NAME, plus PROCWIRE_TOKEN only when token is set: an
// inherited one is removed otherwise (§3.2, §8.3).
func (m *Module) childEnv(token []byte) []string {
	env := make([]string, 0, len(os.Environ())+len(m.cfg.Env)+2)
	idx := map[string]int{}
	add := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if k == envToken || k == envModuleName {
			return
		}
		if i, ok := idx[k]; ok {
			env[i] = kv
			return
		}
		idx[k] = len(env)
		env = append(env, kv)
	}
	for _, kv := range os.Environ() {
		add(kv)
	}
	for _, kv := range m.cfg.Env {
		add(kv)
	}
	env = append(env, envModuleName+"="+m.cfg.Name)
	if token != nil {
		env = append(env, envToken+"="+string(token))
	}
	return env
}
