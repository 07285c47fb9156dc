package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/procxy/procxy"
)

func demoCommand() *command {
	return &command{
		name:    "demo",
		summary: "a short tour: a Worker in a child process",
		usage: `usage: procxy demo

Demo is a short tour of procxy. It constructs a Worker in a child process
(this same binary, re-run) and shows a call, concurrent calls, a deadline,
events, a stream, a remote error, a panic, a crash and a clean shutdown,
with process ids and timings. It takes a few seconds. What the children
print goes to stderr.
`,
		setup: func(*flag.FlagSet) runFunc { return runDemo },
	}
}

// demoTimeout bounds the whole tour, so that it cannot hang.
const demoTimeout = 30 * time.Second

func runDemo(ctx context.Context, inv *invocation) error {
	stdout, stderr := inv.stdout, inv.stderr
	if len(inv.args) > 0 {
		return usageErrorf("demo takes no arguments")
	}
	ctx, cancel := context.WithTimeout(ctx, demoTimeout)
	defer cancel()
	t := &tour{out: stdout, opts: []procxy.Option{procxy.Logger(childLogger(stderr))}}
	fmt.Fprintf(stdout, "procxy demo: a Worker in a child process (the parent is pid %d)\n\n", os.Getpid())

	start := time.Now()
	w, err := procxy.New[Worker](ctx, t.opts...)
	if err != nil {
		return err
	}
	defer w.Close()
	pid := w.Process().Pid
	t.step("start", "procxy.New[Worker](ctx) started child pid %d in %s", pid, since(start))

	for _, step := range []func(context.Context, *procxy.Proxy[Worker]) error{
		t.call, t.parallel, t.timeout, t.events, t.stream, t.remoteError, t.panic,
	} {
		if err := step(ctx, w); err != nil {
			return err
		}
	}
	crashed, err := t.crash(ctx)
	if err != nil {
		return err
	}
	if err := t.close(ctx, w); err != nil {
		return err
	}
	return t.noChildLeft(pid, crashed)
}

// tour prints the demo's steps.
type tour struct {
	out  io.Writer
	opts []procxy.Option // for every child
}

func (t *tour) step(name, format string, args ...any) {
	fmt.Fprintf(t.out, "%-9s %s\n", name, fmt.Sprintf(format, args...))
}

func (t *tour) detail(format string, args ...any) {
	fmt.Fprintf(t.out, "%-9s   %s\n", "", fmt.Sprintf(format, args...))
}

func (t *tour) call(ctx context.Context, w *procxy.Proxy[Worker]) error {
	start := time.Now()
	sum, err := procxy.Call[int](ctx, w, "Add", 2, 3)
	if err != nil {
		return err
	}
	took := since(start)
	pid, err := procxy.Call[int](ctx, w, "PID")
	if err != nil {
		return err
	}
	t.step("call", `procxy.Call[int](ctx, w, "Add", 2, 3) = %d in %s, computed by pid %d`, sum, took, pid)
	return nil
}

func (t *tour) parallel(ctx context.Context, w *procxy.Proxy[Worker]) error {
	const n, d = 8, 200 * time.Millisecond
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			if _, err := procxy.Call[time.Duration](ctx, w, "Sleep", d); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	t.step("parallel", "%d calls of Sleep(%v) at once took %s in all: each runs in its own goroutine in the child", n, d, since(start))
	return nil
}

func (t *tour) timeout(parent context.Context, w *procxy.Proxy[Worker]) error {
	ctx, cancel := context.WithTimeout(parent, 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := procxy.Call[time.Duration](ctx, w, "Sleep", time.Second)
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("Sleep(1s) with a 50ms deadline: got %v, want context.DeadlineExceeded", err)
	}
	t.step("timeout", "Sleep(1s) with a 50ms deadline gave up after %s: %v", since(start), err)
	t.detail("errors.Is(err, context.DeadlineExceeded) = true")
	// The parent sends an abort for the call, which cancels Sleep's ctx in
	// the child; Sleep counts that. The abort is asynchronous: poll briefly.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		n, err := procxy.Call[int64](parent, w, "Cancelled")
		if err != nil {
			return err
		}
		if n > 0 {
			t.detail("and the abort cancelled Sleep's ctx in the child")
			return nil
		}
		select {
		case <-tick.C:
		case <-parent.Done():
			return parent.Err()
		}
	}
}

func (t *tour) events(ctx context.Context, w *procxy.Proxy[Worker]) error {
	const steps = 4
	type arrival struct {
		p  Progress
		at time.Time
	}
	got := make(chan arrival, steps)
	procxy.OnEvent(w, "progress", func(p Progress) { got <- arrival{p, time.Now()} })
	start := time.Now()
	res, err := procxy.Call[string](ctx, w, "Build", steps)
	if err != nil {
		return err
	}
	t.step("events", `procxy.OnEvent(w, "progress", fn) received Build(%d)'s events in order:`, steps)
	for i := 1; i <= steps; i++ {
		select {
		case a := <-got:
			if a.p.Step != i {
				return fmt.Errorf("progress event %d arrived as number %d", a.p.Step, i)
			}
			t.detail("+%-7s step %d of %d", a.at.Sub(start).Round(time.Millisecond).String(), a.p.Step, a.p.Of)
		case <-time.After(5 * time.Second):
			return fmt.Errorf("progress event %d never arrived", i)
		}
	}
	t.detail("and Build returned %q", res)
	return nil
}

func (t *tour) stream(ctx context.Context, w *procxy.Proxy[Worker]) error {
	start := time.Now()
	var primes []string
	for p, err := range procxy.Stream[int](ctx, w, "Primes", 30) {
		if err != nil {
			return err
		}
		primes = append(primes, strconv.Itoa(p))
	}
	t.step("stream", `procxy.Stream[int](ctx, w, "Primes", 30) yielded %s in %s`, strings.Join(primes, " "), since(start))
	return nil
}

func (t *tour) remoteError(ctx context.Context, w *procxy.Proxy[Worker]) error {
	_, err := procxy.Call[int](ctx, w, "Div", 1, 0)
	var re *procxy.RemoteError
	if !errors.As(err, &re) {
		return fmt.Errorf("Div(1, 0): got %v, want a *procxy.RemoteError", err)
	}
	t.step("error", "Div(1, 0) failed: %v", err)
	t.detail("a *procxy.RemoteError with Code %q; errors.Is(err, ErrDivZero) = %t", re.Code, errors.Is(err, ErrDivZero))
	return nil
}

func (t *tour) panic(ctx context.Context, w *procxy.Proxy[Worker]) error {
	_, err := procxy.Call[int](ctx, w, "Panic", "boom")
	var re *procxy.RemoteError
	if !errors.As(err, &re) || re.Name != "panic" {
		return fmt.Errorf("Panic: got %v, want a *procxy.RemoteError named panic", err)
	}
	t.step("panic", `Panic("boom") failed: %v; where it panicked, from the child's stack:`, err)
	for _, line := range panicSite(re.Stack) {
		t.detail("  %s", line)
	}
	sum, err := procxy.Call[int](ctx, w, "Add", 1, 1)
	if err != nil {
		return err
	}
	t.detail("the child recovered and goes on: Add(1, 1) = %d", sum)
	return nil
}

// panicSite returns the two stack lines (function, file:line) of the frame
// that called panic, or the stack's first two lines.
func panicSite(stack string) []string {
	lines := strings.Split(strings.TrimSpace(stack), "\n")
	at := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "panic(") {
			at = i + 2 // skip panic( and its file line
			break
		}
	}
	lines = lines[min(at, len(lines)):]
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return lines[:min(2, len(lines))]
}

// crash starts a second child and crashes it, returning its pid.
func (t *tour) crash(ctx context.Context) (int, error) {
	c, err := procxy.New[Worker](ctx, t.opts...)
	if err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	defer func() { c.Close(); wg.Wait() }() // Close ends the pending call, if it still runs
	pid := c.Process().Pid
	pending := make(chan error, 1)
	wg.Go(func() {
		_, err := procxy.Call[time.Duration](ctx, c, "Sleep", 10*time.Second)
		pending <- err
	})
	start := time.Now()
	_, err = procxy.Call[any](ctx, c, "Crash", 3)
	var ee *procxy.ExitError
	if !errors.As(err, &ee) {
		return 0, fmt.Errorf("Crash(3): got %v, want a *procxy.ExitError", err)
	}
	t.step("crash", "Crash(3) on a second child, pid %d, failed after %s with a *procxy.ExitError:", pid, since(start))
	t.detail("%v", err)
	pendingErr := <-pending
	<-c.Done()
	t.detail("ExitCode = %d; a pending Sleep(10s) failed with it too (%t), and so does c.Err() (%t)",
		ee.Code, errors.As(pendingErr, new(*procxy.ExitError)), errors.As(c.Err(), new(*procxy.ExitError)))
	return pid, nil
}

func (t *tour) close(ctx context.Context, w *procxy.Proxy[Worker]) error {
	pid := w.Process().Pid
	start := time.Now()
	if err := w.Close(); err != nil {
		return err
	}
	took := since(start)
	_, err := procxy.Call[int](ctx, w, "Add", 1, 1)
	if !errors.Is(err, procxy.ErrClosed) {
		return fmt.Errorf("Add after Close: got %v, want procxy.ErrClosed", err)
	}
	t.step("close", "w.Close() ended pid %d in %s; calls now fail with %v", pid, took, err)
	return nil
}

// noChildLeft checks that the children have exited and been reaped.
func (t *tour) noChildLeft(pids ...int) error {
	for _, pid := range pids {
		if p, err := os.FindProcess(pid); err == nil {
			if err := p.Signal(syscall.Signal(0)); !errors.Is(err, os.ErrProcessDone) {
				return fmt.Errorf("child pid %d is still there (signal 0: %v)", pid, err)
			}
		}
	}
	t.step("done", "no child left: pids %s have exited and been reaped", strings.Trim(fmt.Sprint(pids), "[]"))
	return nil
}

// since is the time since start, rounded for people.
func since(start time.Time) time.Duration { return round(time.Since(start)) }
