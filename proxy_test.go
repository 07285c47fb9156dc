package procxy_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/procxy/procxy/internal/testproc"

	"go.uber.org/goleak"

	"github.com/procxy/procxy"
)

func TestMain(m *testing.M) {
	procxy.Main(procxy.Observe(childObserver{}))
	os.Setenv("GORACE", "atexit_sleep_ms=0") // children exit without the race detector's pause
	if addr := os.Getenv(envFleetWorker); addr != "" {
		os.Exit(runFleetWorker(addr))
	}
	if runKillMatrixParent() {
		return
	}
	goleak.VerifyTestMain(m)
}

// Calculator is the type of the original spec's acceptance scenarios.
type Calculator struct {
	procxy.Emitter
	base int
}

type CalcConfig struct {
	Base int
}

func NewCalculator(cfg CalcConfig) (*Calculator, error) {
	if cfg.Base < 0 {
		return nil, errors.New("negative base")
	}
	return &Calculator{base: cfg.Base}, nil
}

func (c *Calculator) Add(a, b int) int { return c.base + a + b }

func (c *Calculator) Div(a, b float64) (float64, error) {
	if b == 0 {
		return 0, &procxy.RemoteError{Code: "E_DIV_ZERO", Message: "division by zero"}
	}
	return a / b, nil
}

// Sleep is a slow, context-aware method.
func (c *Calculator) Sleep(ctx context.Context, ms int) (int, error) {
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
		return ms, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

func (c *Calculator) Panic(msg string) int { panic(msg) }

// Crash takes the whole child down from another goroutine.
func (c *Calculator) Crash(how string) {
	switch how {
	case "exit":
		os.Exit(7)
	case "panic":
		go panic("crashed on purpose")
		time.Sleep(time.Hour)
	}
}

// CrashOnce exits the child the first time it is called for marker, and
// succeeds in any later child.
func (c *Calculator) CrashOnce(marker string) (string, error) {
	if _, err := os.Stat(marker); err != nil {
		os.WriteFile(marker, nil, 0o600)
		os.Exit(9)
	}
	return "ok", nil
}

func (c *Calculator) Getenv(name string) string { return os.Getenv(name) }
func (c *Calculator) Getwd() (string, error)    { return os.Getwd() }
func (c *Calculator) Args() []string            { return os.Args[1:] }
func (c *Calculator) PID() int                  { return os.Getpid() }

func (c *Calculator) Progress(n int) error {
	for i := range n {
		if err := c.Emit("progress", i); err != nil {
			return err
		}
	}
	return nil
}

func (c *Calculator) Count(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for i := range n {
			if !yield(i) {
				return
			}
		}
	}
}

func (c *Calculator) Fails(n int) iter.Seq2[int, error] {
	return func(yield func(int, error) bool) {
		for i := range n {
			if !yield(i, nil) {
				return
			}
		}
		yield(0, errors.New("ran out"))
	}
}

func (c *Calculator) Letters(s string) <-chan string {
	ch := make(chan string)
	go func() {
		defer close(ch)
		for _, r := range s {
			ch <- string(r)
		}
	}()
	return ch
}

func (c *Calculator) Pair(a int) (int, int) { return a, a } // unsupported shape

// SlowPID streams its pid once after ms.
func (c *Calculator) SlowPID(ctx context.Context, ms int) iter.Seq[int] {
	return func(yield func(int) bool) {
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond):
			yield(os.Getpid())
		case <-ctx.Done():
		}
	}
}

func init() {
	procxy.Register[Calculator](NewCalculator)
}

func newCalc(t *testing.T, opts ...procxy.Option) *procxy.Proxy[Calculator] {
	t.Helper()
	return newProxy[Calculator](t, opts...)
}

func TestAdd(t *testing.T) {
	p := newCalc(t)
	sum, err := procxy.Call[int](t.Context(), p, "Add", 2, 3)
	if err != nil || sum != 5 {
		t.Fatalf("Add(2, 3) = %d, %v; want 5", sum, err)
	}
	if pid, _ := procxy.Call[int](t.Context(), p, "PID"); pid == os.Getpid() || pid != p.Process().Pid {
		t.Errorf("ran in pid %d; parent %d, child %d", pid, os.Getpid(), p.Process().Pid)
	}
}

func TestConfig(t *testing.T) {
	p := newCalc(t, procxy.Config(CalcConfig{Base: 100}))
	if sum, err := procxy.Call[int](t.Context(), p, "Add", 2, 3); err != nil || sum != 105 {
		t.Fatalf("Add = %d, %v; want 105", sum, err)
	}
	// A constructor error in the child is New's error.
	_, err := procxy.New[Calculator](t.Context(), procxy.Config(CalcConfig{Base: -1}))
	var re *procxy.RemoteError
	if !errors.As(err, &re) || re.Message != "negative base" {
		t.Errorf("constructor error: got %v", err)
	}
	// A config that cannot be serialized fails before anything starts.
	_, err = procxy.New[Calculator](t.Context(), procxy.Config(make(chan int)))
	if err == nil || !strings.Contains(err.Error(), "cannot be sent") {
		t.Errorf("unserializable config: got %v", err)
	}
}

func TestRemoteError(t *testing.T) {
	p := newCalc(t)
	_, err := procxy.Call[float64](t.Context(), p, "Div", 1, 0)
	var re *procxy.RemoteError
	if !errors.As(err, &re) || re.Message != "division by zero" || re.Code != "E_DIV_ZERO" {
		t.Errorf("Div(1, 0): got %#v", err)
	}
	_, err = procxy.Call[int](t.Context(), p, "Panic", "kaboom")
	if !errors.As(err, &re) || re.Name != "panic" || re.Message != "kaboom" ||
		!strings.Contains(re.Stack, "procxy_test.(*Calculator).Panic") {
		t.Errorf("Panic: got %v with stack %q", err, re.Stack)
	}
	// The child survived the panic.
	if sum, err := procxy.Call[int](t.Context(), p, "Add", 1, 1); err != nil || sum != 2 {
		t.Errorf("after panic: %d, %v", sum, err)
	}
}

func TestBadCalls(t *testing.T) {
	p := newCalc(t)
	ctx := t.Context()
	if _, err := procxy.Call[int](ctx, p, "Nope"); !errors.Is(err, procxy.ErrUnknownMethod) {
		t.Errorf("unknown method: got %v", err)
	}
	var re *procxy.RemoteError
	if _, err := procxy.Call[int](ctx, p, "Add", 1); !errors.As(err, &re) || re.Code != procxy.CodeBadArguments {
		t.Errorf("one argument: got %v", err)
	}
	if _, err := procxy.Call[int](ctx, p, "Add", "two", 3); !errors.As(err, &re) || re.Code != procxy.CodeBadArguments ||
		!strings.Contains(re.Message, "argument 1") {
		t.Errorf("string for int: got %v", err)
	}
	if _, err := procxy.Call[int](ctx, p, "Add", make(chan int), 3); err == nil || !strings.Contains(err.Error(), "cannot be sent") {
		t.Errorf("unserializable argument: got %v", err)
	}
	if _, err := procxy.Call[int](ctx, p, "Pair", 1); err == nil || !strings.Contains(err.Error(), "cannot be called") {
		t.Errorf("unsupported shape: got %v", err)
	}
	if _, err := procxy.Call[int](ctx, p, "Count", 3); err == nil || !strings.Contains(err.Error(), "use Stream") {
		t.Errorf("stream via Call: got %v", err)
	}
	// Nothing above broke the proxy.
	if sum, err := procxy.Call[int](ctx, p, "Add", 2, 2); err != nil || sum != 4 {
		t.Errorf("after bad calls: %d, %v", sum, err)
	}
}

func TestTimeout(t *testing.T) {
	p := newCalc(t, procxy.CallTimeout(50*time.Millisecond))
	_, err := procxy.Call[int](t.Context(), p, "Sleep", 1000)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want DeadlineExceeded", err)
	}
	if procxy.DefaultCallTimeout != 30*time.Second {
		t.Errorf("DefaultCallTimeout = %v, want 30s", procxy.DefaultCallTimeout)
	}
	// The proxy is still usable.
	if ms, err := procxy.Call[int](t.Context(), p, "Sleep", 1); err != nil || ms != 1 {
		t.Errorf("after timeout: %d, %v", ms, err)
	}
}

func TestCancel(t *testing.T) {
	p := newCalc(t)
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { _, err := procxy.Call[int](ctx, p, "Sleep", 60_000); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	p := newCalc(t)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			if sum, err := procxy.Call[int](t.Context(), p, "Add", i, i); err != nil || sum != 2*i {
				errs <- fmt.Errorf("Add(%d, %d) = %d, %v", i, i, sum, err)
			}
		})
	}
	// Slow calls overlap: 10 × 200 ms finish together, not one after another.
	start := time.Now()
	for range 10 {
		wg.Go(func() {
			if _, err := procxy.Call[int](t.Context(), p, "Sleep", 200); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("200 adds and 10 concurrent 200 ms sleeps took %v", time.Since(start))
}

func TestEnvDirArgs(t *testing.T) {
	dir := t.TempDir()
	p := newCalc(t, procxy.Env("PROCXY_TEST_VAR=hello"), procxy.Dir(dir), procxy.Args("-x", "y"))
	ctx := t.Context()
	if v, err := procxy.Call[string](ctx, p, "Getenv", "PROCXY_TEST_VAR"); err != nil || v != "hello" {
		t.Errorf("env: %q, %v", v, err)
	}
	if v, err := procxy.Call[string](ctx, p, "Getenv", "PROCXY_CHILD"); err != nil || v != "" {
		t.Errorf("PROCXY_CHILD leaked into the child's environment: %q, %v", v, err)
	}
	wd, err := procxy.Call[string](ctx, p, "Getwd")
	want, _ := filepath.EvalSymlinks(dir)
	if got, _ := filepath.EvalSymlinks(wd); err != nil || got != want {
		t.Errorf("dir: %q, %v; want %q", wd, err, dir)
	}
	if v, err := procxy.Call[[]string](ctx, p, "Args"); err != nil || !slices.Equal(v, []string{"-x", "y"}) {
		t.Errorf("args: %q, %v", v, err)
	}
}

func TestEvents(t *testing.T) {
	p := newCalc(t)
	var mu sync.Mutex
	var order []string
	done := make(chan struct{})
	procxy.OnEvent(p, "progress", func(i int) {
		mu.Lock()
		order = append(order, fmt.Sprint("a", i))
		mu.Unlock()
	})
	procxy.OnEvent(p, "progress", func(i int) {
		mu.Lock()
		order = append(order, fmt.Sprint("b", i))
		mu.Unlock()
		if i == 99 {
			close(done)
		}
	})
	if _, err := procxy.Call[any](t.Context(), p, "Progress", 100); err != nil {
		t.Fatal(err)
	}
	<-done
	mu.Lock()
	defer mu.Unlock()
	for i := range 100 {
		if order[2*i] != fmt.Sprint("a", i) || order[2*i+1] != fmt.Sprint("b", i) {
			t.Fatalf("listeners ran out of order at %d: %v", i, order[2*i:2*i+2])
		}
	}
}

func TestStreams(t *testing.T) {
	p := newCalc(t)
	ctx := t.Context()
	var got []int
	for v, err := range procxy.Stream[int](ctx, p, "Count", 5) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, v)
	}
	if !slices.Equal(got, []int{0, 1, 2, 3, 4}) {
		t.Errorf("Count(5) = %v", got)
	}
	var letters []string
	for v, err := range procxy.Stream[string](ctx, p, "Letters", "héllo") {
		if err != nil {
			t.Fatal(err)
		}
		letters = append(letters, v)
	}
	if strings.Join(letters, "") != "héllo" {
		t.Errorf("Letters = %v", letters)
	}
	n := 0
	var last error
	for _, err := range procxy.Stream[int](ctx, p, "Fails", 3) {
		if err != nil {
			last = err
			break
		}
		n++
	}
	if n != 3 || last == nil || !strings.Contains(last.Error(), "ran out") {
		t.Errorf("Fails(3): %d items then %v", n, last)
	}
	for v := range procxy.Stream[int](ctx, p, "Count", 1_000_000) { // break early
		if v == 10 {
			break
		}
	}
}

func TestClose(t *testing.T) {
	p := newCalc(t)
	pid := p.Process().Pid
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := procxy.Call[int](t.Context(), p, "Add", 1, 2); !errors.Is(err, procxy.ErrClosed) {
		t.Errorf("call after Close: got %v, want ErrClosed", err)
	}
	if !errors.Is(p.Err(), procxy.ErrClosed) {
		t.Errorf("Err() = %v", p.Err())
	}
	if testproc.Exists(pid) {
		t.Errorf("child %d still exists after Close", pid)
	}
	p.Close() // idempotent
}

func TestCrash(t *testing.T) {
	for _, how := range []string{"exit", "panic"} {
		t.Run(how, func(t *testing.T) {
			p := newCalc(t)
			slow := make(chan error, 1)
			go func() { _, err := procxy.Call[int](context.Background(), p, "Sleep", 60_000); slow <- err }()
			_, err := procxy.Call[any](t.Context(), p, "Crash", how)
			var ee *procxy.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("crashing call: got %v, want *ExitError", err)
			}
			if err := <-slow; !errors.As(err, &ee) {
				t.Fatalf("pending call: got %v, want *ExitError", err)
			}
			switch how {
			case "exit":
				if ee.Code != 7 {
					t.Errorf("exit code %d, want 7", ee.Code)
				}
			case "panic":
				if ee.Code != 2 || !strings.Contains(ee.Panic, "crashed on purpose") || !strings.Contains(ee.Panic, "goroutine") {
					t.Errorf("panic report: code %d, %q", ee.Code, ee.Panic)
				}
			}
			t.Logf("%s: %v", how, err)
			<-p.Done()
			if _, err := procxy.Call[int](t.Context(), p, "Add", 1, 1); !errors.As(err, &ee) {
				t.Errorf("call after crash: got %v", err)
			}
		})
	}
}

func TestKill(t *testing.T) {
	p := newCalc(t)
	p.Kill()
	if _, err := procxy.Call[int](t.Context(), p, "Add", 1, 1); !errors.Is(err, procxy.ErrClosed) {
		t.Errorf("after Kill: got %v", err)
	}
}

func TestRetriesRestart(t *testing.T) {
	p := newCalc(t, procxy.Retries(1))
	first := p.Process().Pid
	procxy.Call[any](t.Context(), p, "Crash", "exit")
	// The next call finds the child gone, starts a new one and succeeds.
	sum, err := procxy.Call[int](t.Context(), p, "Add", 2, 3)
	if err != nil || sum != 5 {
		t.Fatalf("after restart: %d, %v", sum, err)
	}
	if p.Process().Pid == first {
		t.Errorf("child was not replaced")
	}
}

func TestNoMain(t *testing.T) {
	// A binary that never calls procxy.Main: /bin/sleep stands in for it.
	_, err := procxy.New[Calculator](t.Context(), procxy.Executable("/bin/sleep"), procxy.Args("10"),
		procxy.StartTimeout(200*time.Millisecond))
	if !errors.Is(err, procxy.ErrNoMain) {
		t.Fatalf("got %v, want ErrNoMain", err)
	}
	// A binary that exits at once.
	_, err = procxy.New[Calculator](t.Context(), procxy.Executable("/bin/true"))
	var ee *procxy.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("got %v, want *ExitError", err)
	}
}

func TestSerialized(t *testing.T) {
	p := newCalc(t, procxy.Serialized())
	start := time.Now()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { procxy.Call[int](t.Context(), p, "Sleep", 100) })
	}
	wg.Wait()
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("3 serialized 100 ms calls took %v: they overlapped", d)
	}
}

func TestEmitNotRemote(t *testing.T) {
	p := newCalc(t)
	if _, err := procxy.Call[any](t.Context(), p, "Emit", "progress", 1); !errors.Is(err, procxy.ErrUnknownMethod) {
		t.Errorf("Emit through the proxy: got %v, want ErrUnknownMethod", err)
	}
}

func TestKilledBySignal(t *testing.T) {
	p := newCalc(t)
	errc := make(chan error, 1)
	go func() { _, err := procxy.Call[int](context.Background(), p, "Sleep", 60_000); errc <- err }()
	time.Sleep(50 * time.Millisecond)
	p.Process().Signal(syscall.SIGKILL) // killed from outside
	var ee *procxy.ExitError
	if err := <-errc; !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL || ee.Code != -1 {
		t.Fatalf("got %v, want an ExitError for SIGKILL", err)
	}
}

func TestIdempotentRetry(t *testing.T) {
	marker := filepath.Join(t.TempDir(), "crashed")
	// Not idempotent: the call died in the middle, so it is not retried.
	p := newCalc(t, procxy.Retries(1))
	var ee *procxy.ExitError
	if _, err := procxy.Call[string](t.Context(), p, "CrashOnce", marker); !errors.As(err, &ee) || ee.Code != 9 {
		t.Fatalf("non-idempotent: got %v, want the ExitError", err)
	}
	// Idempotent: retried in a new child, where it succeeds.
	os.Remove(marker)
	q := newCalc(t, procxy.Retries(1), procxy.Idempotent("CrashOnce"))
	if v, err := procxy.Call[string](t.Context(), q, "CrashOnce", marker); err != nil || v != "ok" {
		t.Fatalf("idempotent: got %q, %v; want ok after a retry", v, err)
	}
}

// Grandchild starts a process that inherits the child's stdout and stderr
// and outlives the child.
func (c *Calculator) Grandchild() (int, error) {
	cmd := exec.Command("sleep", "30")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	return cmd.Process.Pid, nil
}

// TestCloseWithGrandchild: a grandchild holding the child's output pipes
// open does not keep Close or the crash report waiting.
func TestCloseWithGrandchild(t *testing.T) {
	p := newCalc(t)
	gc, err := procxy.Call[int](t.Context(), p, "Grandchild")
	if err != nil {
		t.Fatal(err)
	}
	defer testproc.Kill(gc)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	q := newCalc(t)
	gc2, _ := procxy.Call[int](t.Context(), q, "Grandchild")
	defer testproc.Kill(gc2)
	var ee *procxy.ExitError
	if _, err := procxy.Call[any](t.Context(), q, "Crash", "exit"); !errors.As(err, &ee) || ee.Code != 7 {
		t.Fatalf("crash with a grandchild: got %v", err)
	}
}
