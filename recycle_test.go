package procxy_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/internal/testproc"
	"github.com/procxy/procxy/rpc"
)

// Leaky is a type whose methods misbehave as untrusted code does: one
// ignores its context and never returns, one keeps what it allocates.
type Leaky struct {
	mu      sync.Mutex
	hold    [][]byte
	release chan struct{} // Hold returns once Release closes it
}

func init() { procxy.Register[Leaky](nil) }

func (*Leaky) PID() int { return os.Getpid() }

// Stuck ignores its context and never returns.
func (*Leaky) Stuck() int { select {} }

// BlockOn waits for its context when it runs in the process pid, and
// returns this process's pid at once anywhere else.
func (*Leaky) BlockOn(ctx context.Context, pid int) (int, error) {
	if os.Getpid() == pid {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return os.Getpid(), nil
}

// Hold ignores its context and returns once Release is called.
func (l *Leaky) Hold() int {
	<-l.held()
	return os.Getpid()
}

// Release lets Hold return.
func (l *Leaky) Release() { close(l.held()) }

func (l *Leaky) held() chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.release == nil {
		l.release = make(chan struct{})
	}
	return l.release
}

// Grow allocates mib MiB, touches every page and keeps it.
func (l *Leaky) Grow(mib int) int {
	b := make([]byte, mib<<20)
	for i := 0; i < len(b); i += 4096 {
		b[i] = 1
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hold = append(l.hold, b)
	return len(l.hold)
}

func newLeaky(t *testing.T, opts ...procxy.Option) *procxy.Proxy[Leaky] {
	t.Helper()
	return newProxy[Leaky](t, opts...)
}

func leakyPID(t *testing.T, target procxy.Target[Leaky]) int {
	t.Helper()
	pid, err := procxy.Call[int](t.Context(), target, "PID")
	if err != nil {
		t.Fatalf("PID: %v", err)
	}
	return pid
}

func TestKillOnTimeoutRecyclesStuckChild(t *testing.T) {
	p := newLeaky(t, procxy.CallTimeout(100*time.Millisecond), procxy.Recycling(procxy.Recycle{KillOnTimeout: 50 * time.Millisecond}))
	first := leakyPID(t, p)
	_, err := procxy.Call[int](t.Context(), p, "Stuck")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stuck: got %v, want a timeout", err)
	}
	testproc.Gone(t, first)
	second := leakyPID(t, p)
	if second == first {
		t.Fatalf("the child that ran Stuck (pid %d) still serves", first)
	}
	if err := p.Err(); err != nil {
		t.Fatalf("the proxy ended: %v", err)
	}
}

// TestKillOnTimeoutSparesMethodThatReturns: a method that ignores its
// context but returns within the grace leaves its child alone.
func TestKillOnTimeoutSparesMethodThatReturns(t *testing.T) {
	const grace = 2 * time.Second
	p := newLeaky(t, procxy.CallTimeout(20*time.Millisecond), procxy.Recycling(procxy.Recycle{KillOnTimeout: grace}))
	first := leakyPID(t, p)
	_, err := procxy.Call[int](t.Context(), p, "Hold")
	timedOut := time.Now()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Hold: got %v, want a timeout", err)
	}
	if _, err := procxy.Call[struct{}](t.Context(), p, "Release"); err != nil {
		t.Fatalf("Release: %v", err)
	}
	time.Sleep(time.Until(timedOut.Add(grace + grace/2))) // the kill would have come by now
	if pid := leakyPID(t, p); pid != first {
		t.Fatalf("the child was replaced (pid %d, then %d) though Hold returned within the grace", first, pid)
	}
}

func TestKillOnTimeoutRetriesIdempotentCallsInPool(t *testing.T) {
	pl, err := procxy.NewPool[Leaky](t.Context(), 1, procxy.Logger(childLog(t)), procxy.Retries(1), procxy.Idempotent("BlockOn"),
		procxy.Recycling(procxy.Recycle{KillOnTimeout: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pl.Close() })
	first := leakyPID(t, pl)
	type result struct {
		pid int
		err error
	}
	blocked := make(chan result, 1)
	go func() {
		pid, err := procxy.Call[int](t.Context(), pl, "BlockOn", first)
		blocked <- result{pid, err}
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := procxy.Call[int](ctx, pl, "Stuck"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stuck: got %v, want a timeout", err)
	}
	r := <-blocked
	if r.err != nil || r.pid == first || r.pid == 0 {
		t.Fatalf("BlockOn: got pid %d, %v; want it retried on a new child (the first was %d)", r.pid, r.err, first)
	}
	testproc.Gone(t, first)
}

func TestKillOnTimeoutFailsOtherCallsClearly(t *testing.T) {
	p := newLeaky(t, procxy.Recycling(procxy.Recycle{KillOnTimeout: 50 * time.Millisecond}))
	first := leakyPID(t, p)
	blocked := make(chan error, 1)
	go func() {
		_, err := procxy.Call[int](t.Context(), p, "BlockOn", first)
		blocked <- err
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := procxy.Call[int](ctx, p, "Stuck"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stuck: got %v, want a timeout", err)
	}
	err := <-blocked
	var ee *procxy.ExitError
	if !errors.As(err, &ee) || !errors.Is(err, procxy.ErrRecycled) {
		t.Fatalf("BlockOn on the recycled child: got %v, want an *ExitError matching ErrRecycled", err)
	}
	if want := "a call to Leaky.Stuck timed out and its method was still running 50ms later (Recycle.KillOnTimeout)"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
	if second := leakyPID(t, p); second == first {
		t.Fatalf("still the same child %d", first)
	}
}

func TestRecycleAfterCalls(t *testing.T) {
	p := newLeaky(t, procxy.Recycling(procxy.Recycle{Calls: 3}))
	pids := []int{leakyPID(t, p), leakyPID(t, p), leakyPID(t, p), leakyPID(t, p)}
	if pids[0] != pids[1] || pids[1] != pids[2] {
		t.Fatalf("pids %v: the first three calls should share a child", pids)
	}
	if pids[3] == pids[2] {
		t.Fatalf("pids %v: the fourth call should get a new child", pids)
	}
	testproc.Gone(t, pids[0])
}

func TestRecycleAtAge(t *testing.T) {
	p := newLeaky(t, procxy.Recycling(procxy.Recycle{Age: 100 * time.Millisecond}))
	first := leakyPID(t, p)
	testproc.Gone(t, first)
	if second := leakyPID(t, p); second == first {
		t.Fatalf("still the same child %d", first)
	}
}

func TestRecycleOverRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the resident-memory watchdog reads /proc (Linux)")
	}
	const limit = 256 << 20
	p := newLeaky(t, procxy.Recycling(procxy.Recycle{MaxRSS: limit}))
	first := leakyPID(t, p)
	var err error
	for i := 0; i < 40 && err == nil; i++ {
		_, err = procxy.Call[int](t.Context(), p, "Grow", 32)
	}
	var ee *procxy.ExitError
	if !errors.As(err, &ee) || !errors.Is(err, procxy.ErrRecycled) || ee.PID != first {
		t.Fatalf("Grow past the limit: got %v, want the first child's *ExitError matching ErrRecycled", err)
	}
	if !strings.Contains(err.Error(), "resident memory ") || !strings.Contains(err.Error(), " over the limit 256.0 MiB") {
		t.Errorf("error %q does not name the resident-memory limit", err)
	}
	t.Logf("the user sees: %v", err)
	if second := leakyPID(t, p); second == first {
		t.Fatalf("still the same child %d", first)
	}
}

// recycledFunc runs in a child that serves one call.
var recycledFunc = procxy.Func("test.recycledPID", func(context.Context, int) (int, error) { return os.Getpid(), nil },
	procxy.Recycling(procxy.Recycle{Calls: 1}))

func TestFuncRecycleAfterCalls(t *testing.T) {
	t.Cleanup(func() { recycledFunc.Close() })
	a, err := recycledFunc.Call(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := recycledFunc.Call(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatalf("both calls ran in pid %d; want a child per call", a)
	}
}

// TestErrClosedMatchesRPC: a call after Close fails with ErrClosed, which
// matches rpc.ErrClosed like every error of a call whose connection is
// gone, and is not retried.
func TestErrClosedMatchesRPC(t *testing.T) {
	p := newLeaky(t, procxy.Retries(3), procxy.Idempotent())
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := procxy.Call[int](t.Context(), p, "PID")
	if !errors.Is(err, procxy.ErrClosed) || !errors.Is(err, rpc.ErrClosed) || err.Error() != "procxy: proxy closed" {
		t.Fatalf("call after Close: got %v, want ErrClosed matching rpc.ErrClosed", err)
	}
	if !errors.Is(procxy.ErrUnknownMethod, rpc.ErrUnknownMethod) {
		t.Error("procxy.ErrUnknownMethod does not match rpc.ErrUnknownMethod")
	}
}
