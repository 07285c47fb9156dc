package procxy

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/procxy/procxy/internal/backoff"
	"github.com/procxy/procxy/internal/supervise"
)

// Pool keeps size children of one type behind one handle. Each call goes
// to the member with the fewest calls in flight; a member whose child dies
// is replaced by a new one (constructed anew). With Retries, a call that
// failed on a dead member is retried on another. Use it with Call and Stream
// like a *Proxy. A Pool is safe for concurrent use.
type Pool[T any] struct {
	o      options
	events listeners // every member's events come here too

	mu       sync.Mutex
	members  []*poolMember[T] // fixed slots; a slot's proxy is nil while it is replaced
	changed  chan struct{}    // closed and renewed when a slot gets a proxy; guarded by mu
	closed   bool
	inflight sync.WaitGroup  // calls in flight, for Close to drain
	wg       sync.WaitGroup  // slot keepers
	stopped  context.Context // cancelled by Close
	stop     context.CancelFunc
}

type poolMember[T any] struct {
	p    *Proxy[T] // guarded by Pool.mu
	busy int       // calls in flight; guarded by Pool.mu
}

// NewPool starts size children, each constructing a T, and returns the pool.
// The options apply to every member.
func NewPool[T any](ctx context.Context, size int, opts ...Option) (*Pool[T], error) {
	if size < 1 {
		return nil, fmt.Errorf("procxy: pool size %d, want at least 1", size)
	}
	o := newOptions(keyOf(reflect.TypeFor[T]()), opts)
	return newPool[T](ctx, size, o)
}

func newPool[T any](ctx context.Context, size int, o options) (*Pool[T], error) {
	member := o
	member.retries = 0 // the pool replaces members itself
	pl := &Pool[T]{o: member, changed: make(chan struct{})}
	pl.stopped, pl.stop = context.WithCancel(context.Background())
	pl.events.log = o.logger.Warn
	member.forward = &pl.events
	pl.o.retries = o.retries
	proxies := make([]*Proxy[T], size)
	errs := make([]error, size)
	var wg sync.WaitGroup
	for i := range size {
		wg.Go(func() { proxies[i], errs[i] = newProxy[T](ctx, member) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, p := range proxies {
			if p != nil {
				p.Kill()
			}
		}
		pl.stop()
		return nil, err
	}
	for _, p := range proxies {
		m := &poolMember[T]{p: p}
		pl.members = append(pl.members, m)
		pl.wg.Go(func() { pl.keep(m, member) })
	}
	return pl, nil
}

// keep replaces the slot's proxy whenever its child dies, until Close,
// with the restart policy host's modules use too: replacements within
// the pool's restart budget (DefaultRestartMax per DefaultRestartWindow
// and member) start at once, later ones wait until the budget allows, and
// failed starts are retried with exponential backoff and jitter.
func (pl *Pool[T]) keep(m *poolMember[T], o options) {
	budget := supervise.Limiter{Max: supervise.DefaultRestartMax, Window: supervise.DefaultRestartWindow}
	for {
		pl.mu.Lock()
		p := m.p
		pl.mu.Unlock()
		select {
		case <-pl.stopped.Done():
			return
		case <-p.Done():
		}
		pl.mu.Lock()
		m.p = nil
		pl.mu.Unlock()
		for failed := 0; ; failed++ {
			wait := budget.Next(time.Now())
			if failed > 0 {
				wait = max(wait, supervise.DefaultBackoff.Delay(failed, backoff.Jitter()))
			}
			if backoff.Sleep(pl.stopped, wait) != nil {
				return
			}
			budget.Allow(time.Now())
			np, err := newProxy[T](context.Background(), o)
			if err == nil {
				pl.mu.Lock()
				if pl.closed {
					pl.mu.Unlock()
					np.Kill()
					return
				}
				m.p = np
				close(pl.changed)
				pl.changed = make(chan struct{})
				pl.mu.Unlock()
				break
			}
			o.logger.Warn("procxy: pool could not replace a member", "type", o.key, "err", err)
		}
	}
}

// acquire picks the live member with the fewest calls in flight, waiting
// for a replacement when every member is being replaced.
func (pl *Pool[T]) acquire(ctx context.Context) (endpoint, func(), error) {
	p, release, err := pl.member(ctx)
	if err != nil {
		return nil, nil, err
	}
	return p, release, nil
}

// call is the retry loop of call for a Pool, with static calls (see Call).
func (pl *Pool[T]) call(ctx context.Context, name string, args []any, out any) error {
	for attempt := 0; ; attempt++ {
		p, release, err := pl.member(ctx)
		if err != nil {
			return err
		}
		err = p.callOnce(ctx, name, args, out)
		release()
		if err == nil || attempt >= pl.o.retries {
			return err
		}
		if _, ok := p.retryable(err, name, attempt); !ok {
			return err
		}
	}
}

// member picks the live member with the fewest calls in flight.
func (pl *Pool[T]) member(ctx context.Context) (*Proxy[T], func(), error) {
	for {
		pl.mu.Lock()
		if pl.closed {
			pl.mu.Unlock()
			return nil, nil, ErrClosed
		}
		var best *poolMember[T]
		for _, m := range pl.members {
			if m.p != nil && m.p.Err() == nil && (best == nil || m.busy < best.busy) {
				best = m
			}
		}
		if best != nil {
			best.busy++
			pl.inflight.Add(1)
			p := best.p
			pl.mu.Unlock()
			return p, func() {
				pl.mu.Lock()
				best.busy--
				pl.mu.Unlock()
				pl.inflight.Done()
			}, nil
		}
		changed := pl.changed
		pl.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-pl.stopped.Done():
			return nil, nil, ErrClosed
		}
	}
}

// Close stops taking calls, waits for the calls in flight, then closes
// every member. It is idempotent.
func (pl *Pool[T]) Close() error {
	pl.mu.Lock()
	if pl.closed {
		pl.mu.Unlock()
		return nil
	}
	pl.closed = true
	pl.mu.Unlock()
	pl.inflight.Wait()
	pl.stop()
	pl.wg.Wait()
	var wg sync.WaitGroup
	for _, m := range pl.members {
		if m.p != nil {
			wg.Go(func() { m.p.Close() })
		}
	}
	wg.Wait()
	return nil
}

func (pl *Pool[T]) retryLimit() int { return pl.o.retries }

func (*Pool[T]) of(*T) {}

func (pl *Pool[T]) listen(name string, fn func(msgpack.RawMessage) error) func() {
	return pl.events.add(name, fn)
}

// Size returns the number of members.
func (pl *Pool[T]) Size() int { return len(pl.members) }

// PIDs returns the process ids of the live members.
func (pl *Pool[T]) PIDs() []int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	var pids []int
	for _, m := range pl.members {
		if m.p != nil {
			if proc := m.p.Process(); proc != nil {
				pids = append(pids, proc.Pid)
			}
		}
	}
	return pids
}
