package ipc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/procxy/procxy/internal/backoff"
)

// RetryPolicy says how requests marked [Idempotent] are retried. The zero
// value means the defaults below.
type RetryPolicy struct {
	Attempts   int                  // tries in all, the first included; default 3
	Backoff    time.Duration        // wait before the second try; doubles each time; default 50 ms
	MaxBackoff time.Duration        // largest wait; default 2 s
	Jitter     float64              // random fraction of each wait; default 0.2
	RetryOn    func(err error) bool // which failures are retried; default: no responder, responder gone, connection lost, server shutting down
}

func (p *RetryPolicy) fill() {
	if p.Attempts <= 0 {
		p.Attempts = 3
	}
	if p.Backoff <= 0 {
		p.Backoff = 50 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 2 * time.Second
	}
	if p.Jitter <= 0 {
		p.Jitter = 0.2
	}
	if p.RetryOn == nil {
		p.RetryOn = isTransient
	}
}

func (p *RetryPolicy) retryable(err error) bool {
	return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && p.RetryOn(err)
}

// backoff returns the wait after the given failed attempt (1-based).
func (p *RetryPolicy) backoff(attempt int) time.Duration {
	return backoff.Exponential{Base: p.Backoff, Max: p.MaxBackoff, Jitter: p.Jitter}.Delay(attempt, backoff.Jitter())
}

// BreakerOptions configure the circuit breakers: one per subject, which
// open after consecutive failures and then refuse requests with
// ErrCircuitOpen until Timeout has passed, when a few trial requests decide
// whether they close again. The zero value means the defaults below.
type BreakerOptions struct {
	Enabled     bool
	Failures    int           // consecutive failures that open a breaker; default 5
	Timeout     time.Duration // how long a breaker stays open; default 10 s
	HalfOpenMax int           // trial requests while half-open; default 1
	MaxSubjects int           // breakers kept (least recently used go first); default 1024
	// IsFailure says which errors count against a subject; default: no
	// responder, responder gone, lost connection, deadline exceeded and
	// handler panics. Errors a handler returned on purpose do not.
	IsFailure func(err error) bool
	// OnChange is called when a breaker changes state.
	OnChange func(subject string, from, to string)
}

func (b *BreakerOptions) fill() {
	if b.Failures <= 0 {
		b.Failures = 5
	}
	if b.Timeout <= 0 {
		b.Timeout = 10 * time.Second
	}
	if b.HalfOpenMax <= 0 {
		b.HalfOpenMax = 1
	}
	if b.MaxSubjects <= 0 {
		b.MaxSubjects = 1024
	}
	if b.IsFailure == nil {
		b.IsFailure = func(err error) bool {
			var re *RemoteError
			if errors.As(err, &re) {
				return re.Name == "panic"
			}
			return isTransient(err) || errors.Is(err, context.DeadlineExceeded)
		}
	}
}

// breakers holds one gobreaker per subject, with a bounded LRU.
type breakers struct {
	o     BreakerOptions
	mu    sync.Mutex
	m     map[string]*breakerEntry
	clock uint64
}

type breakerEntry struct {
	cb   *gobreaker.CircuitBreaker[*Msg]
	used uint64
}

func newBreakers(o BreakerOptions) *breakers {
	return &breakers{o: o, m: make(map[string]*breakerEntry)}
}

func (b *breakers) get(subject string) *gobreaker.CircuitBreaker[*Msg] {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clock++
	if e := b.m[subject]; e != nil {
		e.used = b.clock
		return e.cb
	}
	if len(b.m) >= b.o.MaxSubjects {
		var oldest string
		var at uint64 = ^uint64(0)
		for s, e := range b.m {
			if e.used < at {
				oldest, at = s, e.used
			}
		}
		delete(b.m, oldest)
	}
	st := gobreaker.Settings{
		Name:        subject,
		MaxRequests: uint32(b.o.HalfOpenMax),
		Timeout:     b.o.Timeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= uint32(b.o.Failures) },
		IsSuccessful: func(err error) bool {
			return err == nil || !b.o.IsFailure(err)
		},
		IsExcluded: func(err error) bool { return errors.Is(err, context.Canceled) },
	}
	if fn := b.o.OnChange; fn != nil {
		st.OnStateChange = func(name string, from, to gobreaker.State) { fn(name, from.String(), to.String()) }
	}
	e := &breakerEntry{cb: gobreaker.NewCircuitBreaker[*Msg](st), used: b.clock}
	b.m[subject] = e
	return e.cb
}

// guarded runs one request attempt through the subject's breaker.
func (c *Conn) guarded(ctx context.Context, m *Msg, o requestOpts, do func(context.Context, *Msg, requestOpts) (*Msg, error)) (*Msg, error) {
	if c.breakers == nil {
		return do(ctx, m, o)
	}
	resp, err := c.breakers.get(m.Subject).Execute(func() (*Msg, error) { return do(ctx, m, o) })
	if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
		return nil, fmt.Errorf("%w: %v", ErrCircuitOpen, err)
	}
	return resp, err
}

// BreakerState returns the state of subject's circuit breaker: "closed",
// "open" or "half-open" ("closed" when breakers are off or the subject has
// none yet).
func (c *Conn) BreakerState(subject string) string {
	if c.breakers == nil {
		return "closed"
	}
	c.breakers.mu.Lock()
	e := c.breakers.m[subject]
	c.breakers.mu.Unlock()
	if e == nil {
		return "closed"
	}
	return e.cb.State().String()
}
