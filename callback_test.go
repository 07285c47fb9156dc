package procxy_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procxy/procxy"
)

// Caller calls back the funcs its parent passes.
type Caller struct {
	mu   sync.Mutex
	kept func(int) (int, error)
}

func init() { procxy.Register[Caller](nil) }

// Sum calls f n times concurrently and sums its results.
func (c *Caller) Sum(ctx context.Context, f func(context.Context, int) (int, error), n int) (int, error) {
	var wg sync.WaitGroup
	var sum atomic.Int64
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			v, err := f(ctx, i)
			if err != nil {
				errs <- err
				return
			}
			sum.Add(int64(v))
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return int(sum.Load()), nil
}

// Greet calls a simple func.
func (c *Caller) Greet(f func(string) string, name string) string {
	if f == nil {
		return "nil func"
	}
	return f(name)
}

// Try returns f's error, as it got it.
func (c *Caller) Try(f func() error) error { return f() }

// Block calls f with its own context, which ends when the parent's call
// is cancelled.
func (c *Caller) Block(ctx context.Context, f func(context.Context) error) error { return f(ctx) }

// Keep keeps f beyond the call; Later calls it.
func (c *Caller) Keep(f func(int) (int, error)) {
	c.mu.Lock()
	c.kept = f
	c.mu.Unlock()
}

func (c *Caller) Later() error {
	c.mu.Lock()
	f := c.kept
	c.mu.Unlock()
	_, err := f(1)
	return err
}

func newCaller(t *testing.T) *procxy.Proxy[Caller] {
	t.Helper()
	p, err := procxy.New[Caller](t.Context(), procxy.Logger(childLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestCallbackConcurrent: the child calls a parent func 10,000 times at
// once.
func TestCallbackConcurrent(t *testing.T) {
	p := newCaller(t)
	var calls atomic.Int64
	double := func(_ context.Context, x int) (int, error) { calls.Add(1); return 2 * x, nil }
	got, err := procxy.Call[int](t.Context(), p, "Sum", double, 10000)
	if want := 2 * (10000 * 9999 / 2); err != nil || got != want {
		t.Fatalf("Sum = %d, %v; want %d", got, err, want)
	}
	if calls.Load() != 10000 {
		t.Errorf("the func ran %d times, want 10000", calls.Load())
	}
}

func TestCallbackSimple(t *testing.T) {
	p := newCaller(t)
	got, err := procxy.Call[string](t.Context(), p, "Greet", func(s string) string { return "hello " + s }, "gopher")
	if err != nil || got != "hello gopher" {
		t.Errorf("Greet = %q, %v", got, err)
	}
	got, err = procxy.Call[string](t.Context(), p, "Greet", nil, "gopher")
	if err != nil || got != "nil func" {
		t.Errorf("Greet(nil) = %q, %v; want the method to see a nil func", got, err)
	}
	var nilFunc func(string) string
	got, err = procxy.Call[string](t.Context(), p, "Greet", nilFunc, "gopher")
	if err != nil || got != "nil func" {
		t.Errorf("Greet(nil func) = %q, %v; want the method to see a nil func", got, err)
	}
	_, err = procxy.Call[string](t.Context(), p, "Greet", 42, "gopher")
	if want := "procxy: Caller.Greet: argument 1 is an int, want func(string) string"; err == nil || err.Error() != want {
		t.Errorf("Greet(42): %v\nwant %s", err, want)
	}
}

// TestCallbackFails: a callback's error reaches the method with its
// identity, and the method's return brings it back.
func TestCallbackFails(t *testing.T) {
	p := newCaller(t)
	_, err := procxy.Call[struct{}](t.Context(), p, "Try", func() error { return fmt.Errorf("deep: %w", ErrQuota) })
	if !errors.Is(err, ErrQuota) {
		t.Errorf("Try: %v; want it to match ErrQuota", err)
	}
	if want := "procxy: Caller.Try: deep: values: quota exceeded"; err == nil || err.Error() != want {
		t.Errorf("Try: %v\nwant %s", err, want)
	}
	_, err = procxy.Call[struct{}](t.Context(), p, "Try", func() error { return &NotFoundError{Key: "k", Tries: 2} })
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.Key != "k" || nf.Tries != 2 {
		t.Errorf("Try: %v; want a *NotFoundError", err)
	}
	_, err = procxy.Call[struct{}](t.Context(), p, "Try", func() error { panic("oops") })
	if want := "procxy: Caller.Try: panic: oops"; err == nil || err.Error() != want {
		t.Errorf("Try(panics): %v\nwant %s", err, want)
	}
	_, err = procxy.Call[int](t.Context(), p, "Sum", func(context.Context, int) (int, error) { return 0, context.DeadlineExceeded }, 3)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Sum: %v; want it to match context.DeadlineExceeded", err)
	}
}

// TestCallbackCancelled: the callback's context ends when the parent's
// call ends.
func TestCallbackCancelled(t *testing.T) {
	p := newCaller(t)
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{})
	ended := make(chan error, 1)
	go func() {
		<-started
		cancel()
	}()
	_, err := procxy.Call[struct{}](ctx, p, "Block", func(ctx context.Context) error {
		close(started)
		<-ctx.Done()
		ended <- ctx.Err()
		return ctx.Err()
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Block: %v; want context.Canceled", err)
	}
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("the callback's context ended with %v, want context.Canceled", err)
	}
}

// TestCallbackExpired: a callback called after its call returned fails
// with ErrCallbackExpired.
func TestCallbackExpired(t *testing.T) {
	p := newCaller(t)
	ran := false
	if _, err := procxy.Call[struct{}](t.Context(), p, "Keep", func(x int) (int, error) { ran = true; return x, nil }); err != nil {
		t.Fatal(err)
	}
	_, err := procxy.Call[struct{}](t.Context(), p, "Later")
	if !errors.Is(err, procxy.ErrCallbackExpired) {
		t.Errorf("Later: %v; want ErrCallbackExpired", err)
	}
	if want := "procxy: Caller.Later: procxy: callback called after its call returned"; err == nil || err.Error() != want {
		t.Errorf("Later: %v\nwant %s", err, want)
	}
	if ran {
		t.Error("an expired callback ran")
	}
}

// Notifier is an interface whose values can be passed to a child
// (RegisterInterface).
type Notifier interface {
	Notify(ctx context.Context, msg string) error
	Count() int
}

type remoteNotifier struct{ call procxy.CallbackCaller }

func (r remoteNotifier) Notify(ctx context.Context, msg string) error {
	return r.call(ctx, "Notify", nil, msg)
}

func (r remoteNotifier) Count() int {
	var n int
	if err := r.call(context.Background(), "Count", &n); err != nil {
		panic(err)
	}
	return n
}

func init() {
	procxy.RegisterInterface(func(call procxy.CallbackCaller) Notifier { return remoteNotifier{call} })
}

// Tell notifies n of each message and returns its count.
func (c *Caller) Tell(ctx context.Context, n Notifier, msgs []string) (int, error) {
	if n == nil {
		return -1, nil
	}
	for _, m := range msgs {
		if err := n.Notify(ctx, m); err != nil {
			return 0, err
		}
	}
	return n.Count(), nil
}

type recorder struct {
	mu  sync.Mutex
	got []string
	pid int
}

func (r *recorder) Notify(_ context.Context, msg string) error {
	if msg == "fail" {
		return fmt.Errorf("notify: %w", ErrQuota)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, msg)
	r.pid = pid()
	return nil
}

func (r *recorder) Count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// TestCallbackInterface: a value of a registered interface type passed as
// an argument is called in the parent, errors keep their identity, and
// nil stays nil.
func TestCallbackInterface(t *testing.T) {
	p := newCaller(t)
	rec := &recorder{}
	n, err := procxy.Call[int](t.Context(), p, "Tell", rec, []string{"a", "b"})
	if err != nil || n != 2 || rec.pid != pid() {
		t.Fatalf("Tell = %d, %v (ran in pid %d, want %d)", n, err, rec.pid, pid())
	}
	_, err = procxy.Call[int](t.Context(), p, "Tell", rec, []string{"fail"})
	if want := "procxy: Caller.Tell: notify: values: quota exceeded"; !errors.Is(err, ErrQuota) || err.Error() != want {
		t.Errorf("Tell(fail): %v\nwant %s, matching ErrQuota", err, want)
	}
	if n, err := procxy.Call[int](t.Context(), p, "Tell", nil, []string{"a"}); err != nil || n != -1 {
		t.Errorf("Tell(nil) = %d, %v; want the method to see a nil Notifier", n, err)
	}
}

// Within calls f with a context that ends after ms milliseconds, in the
// child.
func (c *Caller) Within(ctx context.Context, f func(context.Context) error, ms int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Duration(ms)*time.Millisecond)
	defer cancel()
	return f(ctx)
}

// TestCallbackChildCancels: when the context the child passed to a
// callback ends, the parent's run of it sees its context end.
func TestCallbackChildCancels(t *testing.T) {
	p := newCaller(t)
	ended := make(chan error, 1)
	_, err := procxy.Call[struct{}](t.Context(), p, "Within", func(ctx context.Context) error {
		<-ctx.Done()
		ended <- ctx.Err()
		return ctx.Err()
	}, 20)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Within: %v; want context.DeadlineExceeded", err)
	}
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("the parent's run ended with %v, want context.Canceled", err)
	}
}

// sumVia is a Func whose input is a callback: it runs in a child and
// calls the parent's func.
var sumVia = procxy.Func("sumVia", func(ctx context.Context, f func(context.Context, int) (int, error)) (int, error) {
	sum := 0
	for i := range 10 {
		v, err := f(ctx, i)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
})

// TestCallbackFunc: a Func's func input runs in the parent.
func TestCallbackFunc(t *testing.T) {
	defer sumVia.Close()
	parent := pid()
	got, err := sumVia.Call(t.Context(), func(_ context.Context, x int) (int, error) {
		if pid() != parent {
			return 0, errors.New("not in the parent")
		}
		return x * x, nil
	})
	if err != nil || got != 285 {
		t.Errorf("sumVia = %d, %v; want 285", got, err)
	}
	_, err = sumVia.Call(t.Context(), func(context.Context, int) (int, error) { return 0, ErrQuota })
	if want := "procxy: Func sumVia: values: quota exceeded"; !errors.Is(err, ErrQuota) || err.Error() != want {
		t.Errorf("sumVia with a failing func: %v\nwant %s", err, want)
	}
}
