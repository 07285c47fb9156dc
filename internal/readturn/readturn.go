package readturn

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Status is what one [Config.Step] did.
type Status uint8

const (
	// Continue: a frame was read and dispatched.
	Continue Status = iota
	// Interrupted: the read was interrupted by [Config.Interrupt] (or a
	// stale interruption meant for an earlier reader); nothing was lost.
	Interrupted
	// Yield: a frame was read that a waiter cannot dispatch without blocking
	// (a full stream buffer, the handler limit); the owner kept it, and the
	// turn goes to a background reader, whose first Step dispatches it.
	// Only a Step called with background false returns Yield.
	Yield
	// Lost: the background reader served a request inline, and meanwhile
	// the turn moved on (EndInline reported false). The goroutine leaves.
	Lost
	// Stopped: the connection is finished; nobody reads again.
	Stopped
)

// DefaultPeriod is the watchdog period when Config.Period is zero.
const DefaultPeriod = time.Millisecond

// Config is what an Arbiter needs from the connection it arbitrates.
type Config struct {
	// Step reads one frame and dispatches it: answers go to their waiters
	// through [Arbiter.Done]. Only the goroutine holding the turn calls it.
	// background says whether that goroutine is a background reader, which
	// may block while dispatching and may serve requests inline; a waiter
	// must not block (it returns Yield instead) and hands requests to other
	// goroutines.
	Step func(background bool) Status
	// Interrupt makes a Step that is blocked reading return Interrupted soon,
	// without losing data. nil means it cannot: a waiter whose context can
	// be cancelled then never reads and waits for a background reader.
	Interrupt func()
	// Go starts a background reader goroutine; the owner tracks it. It is
	// never called after Stop. nil means a plain go statement.
	Go func(func())
	// Period is the watchdog period: how long an inline handler runs, or
	// the connection goes unread, before a background reader takes over.
	// Zero means DefaultPeriod.
	Period time.Duration
	// IdlePeriod is how long the connection may go unread, while nothing
	// needs it read, before a background reader starts; zero means Period.
	// An owner whose unsolicited frames can wait longer than its inline
	// handlers (a client whose only such frames are pings and the end of
	// the connection) sets a longer one: while calls come one after the
	// other, the watchdog then fires once per IdlePeriod, not once per
	// Period.
	IdlePeriod time.Duration
}

// holder says who has the turn.
type holder uint8

const (
	nobody     holder = iota // nobody reads; the watchdog starts a reader after a period
	waiter                   // Arbiter.cur reads
	background               // a background reader reads
	inline                   // a background reader serves a request inline; anyone may take the turn
)

// Arbiter arbitrates the reading of one connection between the goroutines
// that wait for its frames. See the package documentation for how.
//
// An Arbiter is safe for concurrent use. Create it with [New].
type Arbiter struct {
	cfg    Config
	period time.Duration
	idle   time.Duration // Config.IdlePeriod, or period

	mu      sync.Mutex
	holder  holder  // guarded by mu
	cur     *Waiter // the waiter holding the turn when holder is waiter; guarded by mu
	gen     uint64  // bumped when an inline turn starts or is taken; guarded by mu
	since   int64   // when the inline handler started, or nobody last read; guarded by mu
	queue   queue   // waiters that may read, oldest first; guarded by mu
	demand  int     // Need minus Unneed; guarded by mu
	stopped bool    // guarded by mu
	armed   bool    // the watchdog timer is set; guarded by mu
	armedAt int64   // when it fires, while armed; guarded by mu
	timer   *time.Timer

	// watchDone is the Done channel of the context whose end interrupts a
	// waiter reading with it; watchStop undoes the registration. Kept from
	// one wait to the next, so a caller that reuses one context registers
	// once, not once per call. Guarded by mu.
	watchDone <-chan struct{}
	watchStop func() bool

	completions atomic.Uint64 // Done calls, so a background reader sees it delivered an answer
}

// New returns an Arbiter for the connection described by cfg. Nobody reads
// until a waiter calls Wait or the owner calls Start or Need.
func New(cfg Config) *Arbiter {
	a := &Arbiter{cfg: cfg, period: cfg.Period}
	if a.period <= 0 {
		a.period = DefaultPeriod
	}
	a.idle = cfg.IdlePeriod
	if a.idle <= 0 {
		a.idle = a.period
	}
	if a.cfg.Go == nil {
		a.cfg.Go = func(f func()) { go f() }
	}
	a.timer = time.AfterFunc(time.Hour, a.tick)
	a.timer.Stop()
	return a
}

// Waiter is a goroutine's wait for one frame (a call's answer). Call Reset
// before anyone can call Done or Cancel on it (before the request is sent);
// a Waiter may be reused, after Reset, once Wait has returned.
type Waiter struct {
	state atomic.Uint32 // stateDone | stateCancelled
	wake  chan struct{} // capacity 1: grant, done or cancel happened

	next, prev *Waiter         // in Arbiter.queue; guarded by Arbiter.mu
	queued     bool            // guarded by Arbiter.mu
	needs      bool            // counted in Arbiter.demand while it waits without reading
	done       <-chan struct{} // the wait's context's Done, while it waits
}

const (
	stateDone uint32 = 1 << iota
	stateCancelled
)

// Reset prepares w for a wait.
func (w *Waiter) Reset() {
	w.state.Store(0)
	if w.wake == nil {
		w.wake = make(chan struct{}, 1)
		return
	}
	select {
	case <-w.wake:
	default:
	}
}

func (w *Waiter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Done marks w's frame as arrived; Wait returns true. Step calls it while
// dispatching; anyone may (the owner finishing every call when the
// connection ends, for one).
func (a *Arbiter) Done(w *Waiter) {
	w.state.Or(stateDone)
	a.completions.Add(1)
	w.signal()
}

// Cancel makes Wait return false unless w is already done; a waiter that
// is reading is interrupted. Use it for timeouts the owner tracks itself.
func (a *Arbiter) Cancel(w *Waiter) {
	w.state.Or(stateCancelled)
	a.mu.Lock()
	reading := a.holder == waiter && a.cur == w
	a.mu.Unlock()
	if reading && a.cfg.Interrupt != nil {
		a.cfg.Interrupt()
	}
	w.signal()
}

// Wait returns when Done(w) was called (true), or when ctx ended or
// Cancel(w) was called first (false). While nobody else reads, it reads
// the connection itself.
func (a *Arbiter) Wait(ctx context.Context, w *Waiter) bool {
	return a.wait(ctx.Done(), ctx, w, false)
}

// WaitDone is Wait without cancellation: it returns when Done(w) was
// called, whatever Cancel did before. An owner uses it when a caller gave
// up too late: its answer is being delivered and must be waited for.
func (a *Arbiter) WaitDone(w *Waiter) {
	a.wait(nil, nil, w, true)
}

func (a *Arbiter) wait(done <-chan struct{}, ctx context.Context, w *Waiter, ignoreCancel bool) bool {
	over := stateDone | stateCancelled
	if ignoreCancel {
		over = stateDone
	}
	canRead := done == nil || a.cfg.Interrupt != nil
	w.done = done
	for {
		if s := w.state.Load(); s&over != 0 {
			a.leave(w)
			return s&stateDone != 0
		}
		if canRead {
			if a.acquire(w) {
				if done != nil {
					a.watch(ctx, done)
				}
				a.release(w, a.read(w, over))
				if s := w.state.Load(); s&over != 0 {
					// The common path: it read its own answer. It holds no
					// turn and is in no queue, so there is nothing to leave.
					return s&stateDone != 0
				}
				continue
			}
		} else {
			a.needWhileWaiting(w)
		}
		select {
		case <-w.wake:
		case <-done:
			a.Cancel(w)
			done = nil
		}
	}
}

// watch makes the end of ctx (whose Done is done) interrupt the waiter
// that reads with it. The registration stays for later waits with the same
// context: context.AfterFunc allocates, and most callers reuse a context.
func (a *Arbiter) watch(ctx context.Context, done <-chan struct{}) {
	a.mu.Lock()
	if a.watchDone == done || a.stopped {
		a.mu.Unlock()
		return
	}
	old := a.watchStop
	a.watchDone = done
	a.watchStop = context.AfterFunc(ctx, func() { a.contextEnded(done) })
	a.mu.Unlock()
	if old != nil {
		old()
	}
}

// contextEnded cancels the waiter reading with the context that ended.
func (a *Arbiter) contextEnded(done <-chan struct{}) {
	a.mu.Lock()
	w := a.cur
	reading := a.holder == waiter && w != nil && w.done == done
	if a.watchDone == done {
		a.watchDone, a.watchStop = nil, nil
	}
	a.mu.Unlock()
	if reading {
		a.Cancel(w)
	}
}

// read calls Step as w until w's wait is over, and reports whether the
// turn must go to a background reader.
func (a *Arbiter) read(w *Waiter, over uint32) (yield bool) {
	for w.state.Load()&over == 0 {
		switch a.cfg.Step(false) {
		case Yield:
			return true
		case Stopped:
			a.Stop()
			return false
		}
	}
	return false
}

// acquire gives w the turn if nobody reads or a request is being served
// inline, and otherwise queues it for the turn.
func (a *Arbiter) acquire(w *Waiter) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.holder == waiter && a.cur == w {
		return true // granted while it was waking up
	}
	if !a.stopped && (a.holder == nobody || a.holder == inline) {
		if a.holder == inline {
			a.gen++ // the inline server loses the turn
		}
		a.holder, a.cur = waiter, w
		if w.queued {
			a.queue.remove(w)
		}
		return true
	}
	if !w.queued && !a.stopped {
		a.queue.push(w)
	}
	return false
}

// release ends w's turn.
func (a *Arbiter) release(w *Waiter, yield bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.holder != waiter || a.cur != w {
		return // Stop took it
	}
	a.cur = nil
	if yield {
		a.startLocked()
		return
	}
	a.passLocked()
}

// leave takes w out of the queue, and passes the turn on if w was granted
// it after its wait was over.
func (a *Arbiter) leave(w *Waiter) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if w.queued {
		a.queue.remove(w)
	}
	if w.needs {
		w.needs = false
		a.demand--
	}
	if a.holder == waiter && a.cur == w {
		a.cur = nil
		a.passLocked()
	}
}

// needWhileWaiting counts w, which cannot read, as needing a reader.
func (a *Arbiter) needWhileWaiting(w *Waiter) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !w.needs {
		w.needs = true
		a.needLocked()
	}
}

// passLocked hands the free turn to the oldest live waiter, else to a
// background reader if something needs one, else to nobody.
func (a *Arbiter) passLocked() {
	switch {
	case a.stopped:
		a.holder = nobody
	case a.grantLocked():
	case a.demand > 0:
		a.startLocked()
	default:
		a.holder = nobody
		a.since = now()
		a.armLocked(a.idle)
	}
}

// grantLocked gives the turn to the oldest queued waiter whose wait is not
// over, if any.
func (a *Arbiter) grantLocked() bool {
	for {
		w := a.queue.head
		if w == nil {
			return false
		}
		a.queue.remove(w)
		if w.state.Load() != 0 {
			continue // it wakes up for its own reason and leaves
		}
		a.holder, a.cur = waiter, w
		w.signal()
		return true
	}
}

// startLocked starts a background reader that takes the turn.
func (a *Arbiter) startLocked() {
	if a.stopped {
		a.holder = nobody
		return
	}
	a.holder, a.cur = background, nil
	a.cfg.Go(a.background)
}

// Start starts a background reader now if nobody reads. It reads until it
// has delivered an answer while nothing needs it.
func (a *Arbiter) Start() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.holder == nobody && !a.stopped {
		a.startLocked()
	}
}

// Need says that frames are needed that no waiter will read (an open
// stream, requests to serve): a background reader reads whenever no waiter
// does, until the matching Unneed.
func (a *Arbiter) Need() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.needLocked()
}

func (a *Arbiter) needLocked() {
	a.demand++
	if a.holder == nobody && !a.stopped {
		a.startLocked()
	}
}

// Unneed undoes one Need.
func (a *Arbiter) Unneed() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.demand--
}

// background is a background reader's loop.
func (a *Arbiter) background() {
	for {
		n := a.completions.Load()
		switch a.cfg.Step(true) {
		case Stopped:
			a.Stop()
			return
		case Lost:
			return
		}
		if a.completions.Load() != n && a.yield() {
			return
		}
	}
}

// yield is called by the background reader after it delivered an answer:
// unless something needs it, it gives the turn to a waiter, or to nobody
// so that the next call reads for itself. It reports whether to leave.
func (a *Arbiter) yield() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.stopped || a.holder != background:
		return true
	case a.demand > 0:
		return false
	case a.grantLocked():
	default:
		a.holder = nobody
		a.since = now()
		a.armLocked(a.idle)
	}
	return true
}

// BeginInline is called by the background reader (inside Step) before it
// serves a request on its own goroutine. Until EndInline, any waiter may
// take the turn, and the watchdog hands it to a new background reader if
// the handler runs longer than a period.
func (a *Arbiter) BeginInline() (token uint64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.holder = inline
	a.gen++
	a.since = now()
	a.armLocked(a.period)
	return a.gen
}

// EndInline reports whether the goroutine that served inline still holds
// the turn (it goes on reading); false means the turn moved on and Step
// returns Lost.
func (a *Arbiter) EndInline(token uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.holder == inline && a.gen == token {
		a.holder = background
		return true
	}
	return false
}

// Stop ends reading for good: queued waiters are woken (their owner
// finishes their waits with Done) and no background reader starts again.
// It is idempotent.
func (a *Arbiter) Stop() {
	a.mu.Lock()
	a.stopped = true
	a.holder, a.cur = nobody, nil
	var woken []*Waiter
	for w := a.queue.head; w != nil; w = a.queue.head {
		a.queue.remove(w)
		woken = append(woken, w)
	}
	a.timer.Stop()
	stop := a.watchStop
	a.watchDone, a.watchStop = nil, nil
	a.mu.Unlock()
	if stop != nil {
		stop() // the context no longer holds on to the Arbiter
	}
	for _, w := range woken {
		w.signal()
	}
}

// armLocked sets the watchdog to fire after d unless it is already set to
// fire by then. The timer is armed lazily and left to fire: re-arming it on
// every call would wake an idle thread each time.
func (a *Arbiter) armLocked(d time.Duration) {
	at := now() + int64(d)
	if a.stopped || a.armed && a.armedAt <= at {
		return
	}
	a.armed, a.armedAt = true, at
	a.timer.Reset(d)
}

// tick is the watchdog: it promotes a new reader past a handler that has
// been running inline for a period, and starts one when nobody has read
// for an idle period.
func (a *Arbiter) tick() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.armed = false
	if a.stopped || (a.holder != inline && a.holder != nobody) {
		return
	}
	period := a.period
	if a.holder == nobody {
		period = a.idle
	}
	if left := period - time.Duration(now()-a.since); left > 0 {
		a.armLocked(left)
		return
	}
	if a.holder == inline {
		a.gen++ // the handler finishes off the reading path
	}
	a.startLocked()
}

var epoch = time.Now()

// now is a monotonic clock in nanoseconds.
func now() int64 { return int64(time.Since(epoch)) }

// queue is a FIFO of waiters linked through their own fields.
type queue struct{ head, tail *Waiter }

func (q *queue) push(w *Waiter) {
	w.queued, w.next, w.prev = true, nil, q.tail
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
}

func (q *queue) remove(w *Waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.queued, w.next, w.prev = false, nil, nil
}
