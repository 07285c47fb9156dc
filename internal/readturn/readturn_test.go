package readturn_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/procxy/procxy/internal/readturn"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// frame is what the fake connection carries: an answer for a waiter, a
// request to serve (run), or the end of the connection.
type frame struct {
	to   *readturn.Waiter
	run  func()
	stop bool
}

// conn is a fake connection for an Arbiter: Step takes one frame from a
// channel and dispatches it, and checks that two goroutines never read at
// once.
type conn struct {
	t       testing.TB
	a       *readturn.Arbiter
	frames  chan frame
	intr    chan struct{}
	wg      sync.WaitGroup
	readers atomic.Int32 // goroutines inside Step
	started atomic.Int32 // background readers started
	inlined atomic.Int32 // requests served inline
	bgSteps atomic.Int32 // Steps by background readers
	// waiterReads receives a value whenever a waiter starts a Step.
	waiterReads chan struct{}
}

func newConn(t testing.TB, interruptible bool) *conn { return newConnIdle(t, interruptible, 0) }

// newConnIdle is newConn with Config.IdlePeriod set to idle.
func newConnIdle(t testing.TB, interruptible bool, idle time.Duration) *conn {
	c := &conn{t: t, frames: make(chan frame, 64), intr: make(chan struct{}, 1), waiterReads: make(chan struct{}, 1)}
	cfg := readturn.Config{
		Step:       c.step,
		Go:         func(f func()) { c.started.Add(1); c.wg.Go(f) },
		IdlePeriod: idle,
	}
	if interruptible {
		cfg.Interrupt = func() {
			select {
			case c.intr <- struct{}{}:
			default:
			}
		}
	}
	c.a = readturn.New(cfg)
	t.Cleanup(func() {
		c.frames <- frame{stop: true}
		c.a.Stop()
		c.wg.Wait()
	})
	return c
}

func (c *conn) step(background bool) readturn.Status {
	if n := c.readers.Add(1); n != 1 {
		c.t.Errorf("%d goroutines read at once", n)
	}
	defer c.readers.Add(-1)
	if background {
		c.bgSteps.Add(1)
	} else {
		select {
		case c.waiterReads <- struct{}{}:
		default:
		}
	}
	select {
	case <-c.intr:
		return readturn.Interrupted
	case f := <-c.frames:
		switch {
		case f.stop:
			c.frames <- f // for whoever reads next
			return readturn.Stopped
		case f.to != nil:
			c.a.Done(f.to)
		case f.run != nil:
			if !background {
				go f.run() // a waiter hands requests off
				return readturn.Continue
			}
			c.inlined.Add(1)
			token := c.a.BeginInline()
			c.readers.Add(-1) // serving, not reading: another goroutine may read now
			f.run()
			if !c.a.EndInline(token) {
				c.readers.Add(1) // for the deferred decrement
				return readturn.Lost
			}
			if n := c.readers.Add(1); n != 1 {
				c.t.Errorf("%d goroutines read at once after EndInline", n)
			}
		}
		return readturn.Continue
	}
}

func newWaiter() *readturn.Waiter {
	w := new(readturn.Waiter)
	w.Reset()
	return w
}

// TestWaiterReadsItself: a caller alone reads its own answers, and no
// background reader is ever started for it.
func TestWaiterReadsItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) { // the watchdog cannot fire between calls
		c := newConn(t, true)
		for range 100 {
			w := newWaiter()
			c.frames <- frame{to: w}
			if !c.a.Wait(context.Background(), w) {
				t.Fatal("Wait = false, want true")
			}
		}
		if n := c.started.Load(); n != 0 {
			t.Errorf("%d background readers started, want 0", n)
		}
	})
}

// TestConcurrentWaiters: many callers at once all get their answers, in any
// order, with one reader at a time (step checks that).
func TestConcurrentWaiters(t *testing.T) {
	c := newConn(t, true)
	const n = 64
	ws := make([]*readturn.Waiter, n)
	for i := range ws {
		ws[i] = newWaiter()
	}
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Go(func() {
			if !c.a.Wait(context.Background(), w) {
				t.Error("Wait = false, want true")
			}
		})
	}
	for i := n - 1; i >= 0; i-- { // answers arrive in reverse order
		c.frames <- frame{to: ws[i]}
	}
	wg.Wait()
}

// TestCancelWhileReading: a reader whose context ends is interrupted and
// leaves; the next waiter reads on and gets its answer.
func TestCancelWhileReading(t *testing.T) {
	c := newConn(t, true)
	ctx, cancel := context.WithCancel(context.Background())
	w1 := newWaiter()
	got := make(chan bool)
	go func() { got <- c.a.Wait(ctx, w1) }()
	<-c.waiterReads // w1 is reading
	cancel()
	if <-got {
		t.Fatal("Wait = true after cancel, want false")
	}
	w2 := newWaiter()
	c.frames <- frame{to: w2}
	if !c.a.Wait(context.Background(), w2) {
		t.Fatal("second Wait = false, want true")
	}
}

// TestCancelNotInterruptible: without Interrupt, a waiter with a
// cancellable context never reads; a background reader serves it, and
// cancelling returns at once.
func TestCancelNotInterruptible(t *testing.T) {
	c := newConn(t, false)
	ctx, cancel := context.WithCancel(context.Background())
	w := newWaiter()
	c.frames <- frame{to: w}
	if !c.a.Wait(ctx, w) {
		t.Fatal("Wait = false, want true")
	}
	if c.bgSteps.Load() == 0 {
		t.Error("the answer was not read by a background reader")
	}
	w2 := newWaiter()
	cancel()
	if c.a.Wait(ctx, w2) {
		t.Fatal("Wait = true with a cancelled context and no answer")
	}
}

// TestCancelByOwner: Cancel (a timeout the owner tracks) ends a wait.
func TestCancelByOwner(t *testing.T) {
	c := newConn(t, true)
	w := newWaiter()
	time.AfterFunc(time.Millisecond, func() { c.a.Cancel(w) })
	if c.a.Wait(context.Background(), w) {
		t.Fatal("Wait = true after Cancel, want false")
	}
	// WaitDone ignores the cancellation and waits for the answer.
	c.frames <- frame{to: w}
	c.a.WaitDone(w)
}

// TestInlinePromotion: a request served inline that blocks does not stop
// reading: after a watchdog period a new background reader takes over and
// dispatches what arrives meanwhile.
func TestInlinePromotion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newConn(t, true)
		c.a.Need()
		release := make(chan struct{})
		c.frames <- frame{run: func() { <-release }}
		second := make(chan struct{})
		start := time.Now()
		c.frames <- frame{run: func() { close(second) }}
		<-second // served although the first request still blocks
		if d := time.Since(start); d < readturn.DefaultPeriod || d > 2*readturn.DefaultPeriod {
			t.Errorf("promoted after %v of (fake) time, want one to two watchdog periods", d)
		}
		if got := c.started.Load(); got != 2 {
			t.Errorf("background readers started: %d, want 2 (the first and one promoted)", got)
		}
		close(release)
		synctest.Wait()
	})
}

// TestWaiterTakesInlineTurn: a caller that arrives while a request is
// served inline reads at once instead of waiting for the watchdog.
func TestWaiterTakesInlineTurn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newConn(t, true)
		c.a.Need()
		release := make(chan struct{})
		entered := make(chan struct{})
		c.frames <- frame{run: func() { close(entered); <-release }}
		<-entered
		w := newWaiter()
		c.frames <- frame{to: w}
		start := time.Now()
		if !c.a.Wait(context.Background(), w) {
			t.Fatal("Wait = false")
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("the waiter got its answer after %v of (fake) time, want at once", d)
		}
		close(release)
		synctest.Wait()
	})
}

// TestIdleWatchdog: when no waiter reads, an unsolicited frame (a request)
// is still read: the watchdog starts a background reader.
func TestIdleWatchdog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newConn(t, true)
		w := newWaiter()
		c.frames <- frame{to: w}
		c.a.Wait(context.Background(), w)
		served := make(chan struct{})
		start := time.Now()
		c.frames <- frame{run: func() { close(served) }}
		<-served
		if d := time.Since(start); d > 2*readturn.DefaultPeriod {
			t.Errorf("read after %v of (fake) time, want within two watchdog periods", d)
		}
		if c.inlined.Load() != 1 {
			t.Errorf("the request was not served by a background reader")
		}
	})
}

// TestIdlePeriod: with a longer IdlePeriod, an unread connection gets a
// background reader after that period, while a blocking inline handler is
// still promoted past after the (shorter) watchdog period.
func TestIdlePeriod(t *testing.T) {
	const idle = 10 * readturn.DefaultPeriod
	synctest.Test(t, func(t *testing.T) {
		c := newConnIdle(t, true, idle)
		w := newWaiter()
		c.frames <- frame{to: w}
		c.a.Wait(context.Background(), w)
		release := make(chan struct{})
		entered := make(chan struct{})
		start := time.Now()
		c.frames <- frame{run: func() { close(entered); <-release }}
		<-entered
		if d := time.Since(start); d < idle || d > 2*idle {
			t.Errorf("an unread connection was read after %v of (fake) time, want one to two idle periods", d)
		}
		second := make(chan struct{})
		start = time.Now()
		c.frames <- frame{run: func() { close(second) }}
		<-second // served although the first request still blocks
		if d := time.Since(start); d > 2*readturn.DefaultPeriod {
			t.Errorf("promoted after %v of (fake) time, want within two watchdog periods", d)
		}
		close(release)
		synctest.Wait()
	})
}

// TestYield: a frame a waiter cannot dispatch goes to a background reader,
// and the waiter still gets its answer.
func TestYield(t *testing.T) {
	c := newConn(t, true)
	held := make(chan struct{})
	var once sync.Once
	step := c.step
	a := readturn.New(readturn.Config{
		Step: func(background bool) readturn.Status {
			yielded := false
			once.Do(func() { yielded = !background })
			if yielded {
				close(held)
				return readturn.Yield
			}
			return step(background)
		},
		Interrupt: func() {},
		Go:        func(f func()) { c.started.Add(1); c.wg.Go(f) },
	})
	c.a = a
	w := newWaiter()
	c.frames <- frame{to: w}
	if !a.Wait(context.Background(), w) {
		t.Fatal("Wait = false")
	}
	<-held
	if c.bgSteps.Load() == 0 {
		t.Error("no background reader took over after Yield")
	}
}

// TestStopWakesWaiters: when the connection ends, queued waiters wake up
// (their owner finishes them) and nothing reads again.
func TestStopWakesWaiters(t *testing.T) {
	c := newConn(t, true)
	c.a.Need() // a background reader holds the turn, so waiters queue
	var wg sync.WaitGroup
	ws := make([]*readturn.Waiter, 8)
	for i := range ws {
		ws[i] = newWaiter()
		wg.Go(func() { c.a.Wait(context.Background(), ws[i]) })
	}
	c.frames <- frame{stop: true}
	for _, w := range ws {
		c.a.Done(w) // the owner fails every pending call
	}
	wg.Wait()
}

// TestContextReused: a context used for many waits is registered once and
// still interrupts the waiter reading with it when it ends. (In a synctest
// bubble the watchdog never fires between waits, so the last waiter is the
// one reading.)
func TestContextReused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newConn(t, true)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for range 50 {
			w := newWaiter()
			c.frames <- frame{to: w}
			if !c.a.Wait(ctx, w) {
				t.Fatal("Wait = false")
			}
		}
		reused := newWaiter()
		allocs := testing.AllocsPerRun(100, func() {
			reused.Reset()
			c.frames <- frame{to: reused}
			c.a.Wait(ctx, reused)
		})
		if allocs > 0 && !raceEnabled {
			t.Errorf("a wait with a reused context allocates %v times, want 0", allocs)
		}
		select {
		case <-c.waiterReads: // a stale signal from the waits above
		default:
		}
		w := newWaiter()
		got := make(chan bool)
		go func() { got <- c.a.Wait(ctx, w) }()
		<-c.waiterReads
		cancel()
		if <-got {
			t.Fatal("Wait = true after its context ended")
		}
	})
}
