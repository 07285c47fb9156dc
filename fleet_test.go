package procxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/internal/testbus"
	"github.com/procxy/procxy/internal/testproc"
	"github.com/procxy/procxy/ipc"
)

// FleetCalc is served by worker processes in the fleet tests.
type FleetCalc struct{ procxy.Emitter }

func (*FleetCalc) Add(a, b int) int { return a + b }
func (*FleetCalc) PID() int         { return os.Getpid() }
func (*FleetCalc) Fail(msg string) error {
	switch msg {
	case "eof":
		return fmt.Errorf("fleet: %w", io.EOF)
	case "quota":
		return fmt.Errorf("fleet: %w", ErrQuota)
	case "notfound":
		return &NotFoundError{Key: "fleet", Tries: 2}
	}
	return errors.New(msg)
}
func (*FleetCalc) Panic() int { panic("fleet worker panics") }

func (*FleetCalc) Count(n int) iter.Seq2[int, error] {
	return func(yield func(int, error) bool) {
		for i := range n {
			if !yield(i, nil) {
				return
			}
		}
	}
}

// Progress emits n progress events, then returns n.
func (c *FleetCalc) Progress(n int) (int, error) {
	for i := range n {
		if err := c.Emit("progress", i); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// Hang blocks until its context ends, telling the listeners of event
// "hanging" its pid first and of "cancelled" when the caller gives up;
// when the file marker exists it returns its pid at once instead, and it
// creates the marker when it hangs, so a retried call does not hang.
func (c *FleetCalc) Hang(ctx context.Context, marker string) (int, error) {
	if marker != "" {
		if _, err := os.Stat(marker); err == nil {
			return os.Getpid(), nil
		}
		os.WriteFile(marker, nil, 0o600)
	}
	c.Emit("hanging", os.Getpid())
	<-ctx.Done()
	c.Emit("cancelled", os.Getpid())
	return 0, ctx.Err()
}

// FleetCalcNext is a later version of FleetCalc, as a caller built
// against it sees the type: Add takes a string, and Mul is new.
type FleetCalcNext struct{}

func (*FleetCalcNext) Add(a int, b string) int { return 0 }
func (*FleetCalcNext) Mul(a, b int) int        { return a * b }
func (*FleetCalcNext) PID() int                { return 0 }

var fleetSquare = procxy.Func("fleet.square", func(_ context.Context, x int) (int, error) { return x * x, nil })

func init() { procxy.Register[FleetCalc](nil, procxy.Name("fleet.Calc")) }

const envFleetWorker = "PROCXY_TEST_FLEET_WORKER"

// runFleetWorker is a worker process: it serves FleetCalc and fleetSquare
// on the ipc server at addr until its stdin closes (the test ended) or it
// is signalled.
func runFleetWorker(addr string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	go func() { io.Copy(io.Discard, os.Stdin); stop() }()
	conn, err := ipc.Dial(ctx, addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	defer conn.Close()
	if err := procxy.Serve(ctx, conn, procxy.Serving("fleet.Calc", "fleet.square"), procxy.WorkerVersion("v1")); err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 1
	}
	return 0
}

// startFleetWorker starts a worker process serving on addr; it ends with
// the test.
func startFleetWorker(t *testing.T, addr string) *exec.Cmd {
	t.Helper()
	return testproc.Start(t, envFleetWorker+"="+addr)
}

// fleet starts an ipc server and n workers on it, and returns a client
// connection once every worker serves FleetCalc.
func fleet(t *testing.T, n int) (*ipc.Conn, string, []*exec.Cmd) {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "bus.sock")
	srv, err := ipc.Listen(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	conn, err := ipc.Dial(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	var cmds []*exec.Cmd
	for range n {
		cmds = append(cmds, startFleetWorker(t, addr))
	}
	if _, err := procxy.WaitWorkers(t.Context(), conn, "fleet.Calc", n); err != nil {
		t.Fatal(err)
	}
	return conn, addr, cmds
}

func TestFleet(t *testing.T) {
	conn, _, cmds := fleet(t, 2)
	ctx := t.Context()
	calc, err := procxy.NewRemote[FleetCalc](conn, procxy.Name("fleet.Calc"))
	if err != nil {
		t.Fatal(err)
	}
	defer calc.Close()

	t.Run("calls", func(t *testing.T) {
		sum, err := procxy.Call[int](ctx, calc, "Add", 2, 3)
		if err != nil || sum != 5 {
			t.Fatalf("Add(2, 3) = %d, %v; want 5", sum, err)
		}
		var into int
		if err := procxy.CallInto(ctx, calc, "Add", &into, 40, 2); err != nil || into != 42 {
			t.Fatalf("CallInto Add(40, 2) = %d, %v; want 42", into, err)
		}
	})

	t.Run("spread", func(t *testing.T) {
		pids := map[int]bool{}
		for range 40 {
			pid, err := procxy.Call[int](ctx, calc, "PID")
			if err != nil {
				t.Fatal(err)
			}
			pids[pid] = true
		}
		for _, c := range cmds {
			if !pids[c.Process.Pid] {
				t.Errorf("worker %d served none of 40 calls (served by %v)", c.Process.Pid, pids)
			}
		}
	})

	t.Run("stream", func(t *testing.T) {
		var got []int
		for v, err := range procxy.Stream[int](ctx, calc, "Count", 5) {
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, v)
		}
		if fmt.Sprint(got) != "[0 1 2 3 4]" {
			t.Fatalf("Count(5) = %v", got)
		}
	})

	t.Run("errors", func(t *testing.T) {
		_, err := procxy.Call[struct{}](ctx, calc, "Fail", "disk full")
		var re *procxy.RemoteError
		if !errors.As(err, &re) || re.Message != "disk full" {
			t.Errorf("Fail: %v; want a *RemoteError with the method's message", err)
		}
		if want := "procxy: Calc.Fail: disk full"; err == nil || err.Error() != want {
			t.Errorf("Fail: got %q, want %q", err, want)
		}
		// The error's identity crosses the bus as it crosses to a child.
		for _, c := range []struct {
			what string
			is   error
		}{{"eof", io.EOF}, {"quota", ErrQuota}} {
			if _, err := procxy.Call[struct{}](ctx, calc, "Fail", c.what); !errors.Is(err, c.is) {
				t.Errorf("Fail(%q) = %v; want errors.Is %v", c.what, err, c.is)
			}
		}
		var nf *NotFoundError
		if _, err := procxy.Call[struct{}](ctx, calc, "Fail", "notfound"); !errors.As(err, &nf) || nf.Key != "fleet" || nf.Tries != 2 {
			t.Errorf("Fail(notfound) = %v; want a *NotFoundError{fleet 2}", err)
		}
		if _, err := procxy.Call[int](ctx, calc, "Add", "1", 2); err == nil || err.Error() != "procxy: Calc.Add: argument 1 is a string, want int" {
			t.Errorf("Add(\"1\", 2): got %q", err)
		}
		_, err = procxy.Call[int](ctx, calc, "Panic")
		if !errors.As(err, &re) || re.Name != "panic" || !strings.Contains(re.Stack, "FleetCalc") {
			t.Errorf("Panic: %v; want a *RemoteError named panic with the worker's stack", err)
		}
		_, err = procxy.Call[int](ctx, calc, "Nope")
		if !errors.Is(err, procxy.ErrUnknownMethod) {
			t.Errorf("Nope: %v; want ErrUnknownMethod", err)
		}
		_, err = procxy.Call[int](ctx, calc, "Add", 1)
		if !errors.As(err, &re) || re.Code != procxy.CodeBadArguments {
			t.Errorf("Add(1): %v; want CodeBadArguments", err)
		}
	})

	t.Run("events", func(t *testing.T) {
		got := make(chan int, 16)
		remove := procxy.OnEvent(calc, "progress", func(i int) { got <- i })
		defer remove()
		if n, err := procxy.Call[int](ctx, calc, "Progress", 3); err != nil || n != 3 {
			t.Fatalf("Progress(3) = %d, %v", n, err)
		}
		for want := range 3 {
			if i := <-got; i != want {
				t.Fatalf("event %d: got %d", want, i)
			}
		}
	})

	t.Run("cancel reaches the worker", func(t *testing.T) {
		hanging, cancelled := make(chan int, 1), make(chan int, 1)
		defer procxy.OnEvent(calc, "hanging", func(pid int) { hanging <- pid })()
		defer procxy.OnEvent(calc, "cancelled", func(pid int) { cancelled <- pid })()
		cctx, cancel := context.WithCancel(ctx)
		errc := make(chan error, 1)
		go func() { _, err := procxy.Call[int](cctx, calc, "Hang", ""); errc <- err }()
		pid := <-hanging
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Hang: %v; want context.Canceled", err)
		}
		if got := <-cancelled; got != pid {
			t.Errorf("cancelled in worker %d, hung in %d", got, pid)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		short, err := procxy.NewRemote[FleetCalc](conn, procxy.Name("fleet.Calc"), procxy.CallTimeout(50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		_, err = procxy.Call[int](ctx, short, "Hang", "")
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 50ms") {
			t.Errorf("Hang with CallTimeout(50ms): %v", err)
		}
	})

	t.Run("func", func(t *testing.T) {
		sq := fleetSquare.Via(conn)
		if v, err := sq.Call(ctx, 7); err != nil || v != 49 {
			t.Fatalf("square(7) on a worker = %d, %v", v, err)
		}
		if v, _ := sq.Local(ctx, 3); v != 9 {
			t.Fatalf("Local square(3) = %d", v)
		}
	})

	t.Run("workers", func(t *testing.T) {
		ws, err := procxy.Workers(ctx, conn)
		if err != nil || len(ws) != 2 {
			t.Fatalf("Workers: %d, %v; want 2", len(ws), err)
		}
		for _, w := range ws {
			if !w.Serves("fleet.Calc") || !w.Serves("fleet.square") || w.Version != "v1" || w.PID == 0 {
				t.Errorf("worker %+v", w)
			}
		}
	})

	t.Run("another version", func(t *testing.T) {
		next, err := procxy.NewRemote[FleetCalcNext](conn, procxy.Name("fleet.Calc"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = procxy.Call[int](ctx, next, "Add", 1, "x")
		if !errors.Is(err, procxy.ErrNoWorker) || !errors.Is(err, ipc.ErrNoResponders) ||
			!strings.Contains(err.Error(), "no worker serves Add(int, string) int") ||
			!strings.Contains(err.Error(), "(version v1) has Add(int, int) int") {
			t.Errorf("Add of another signature: %v", err)
		}
		_, err = procxy.Call[int](ctx, next, "Mul", 2, 3)
		if !errors.Is(err, procxy.ErrNoWorker) || !strings.Contains(err.Error(), "has no method Mul (it has Add, Count, Fail, Hang, PID, Panic, Progress)") {
			t.Errorf("Mul, which the workers lack: %v", err)
		}
		if pid, err := procxy.Call[int](ctx, next, "PID"); err != nil || pid == 0 {
			t.Errorf("PID, which both versions have: %d, %v", pid, err)
		}
	})
}

func TestFleetNoWorker(t *testing.T) {
	conn, _, _ := fleet(t, 0)
	calc, err := procxy.NewRemote[FleetCalc](conn, procxy.Name("fleet.Calc"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = procxy.Call[int](t.Context(), calc, "Add", 1, 2)
	if !errors.Is(err, procxy.ErrNoWorker) || !strings.Contains(err.Error(), "no worker on the bus serves fleet.Calc") {
		t.Errorf("no worker: %v", err)
	}
}

// A worker that dies in the middle of a call fails it with ErrWorkerGone;
// an idempotent method is retried on another worker.
func TestFleetWorkerDies(t *testing.T) {
	conn, addr, _ := fleet(t, 2)
	ctx := t.Context()
	outer := t
	for _, idempotent := range []bool{false, true} {
		t.Run(fmt.Sprint("idempotent=", idempotent), func(t *testing.T) {
			opts := []procxy.Option{procxy.Name("fleet.Calc")}
			if idempotent {
				opts = append(opts, procxy.Retries(3), procxy.Idempotent("Hang"))
			}
			calc, err := procxy.NewRemote[FleetCalc](conn, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer calc.Close()
			hanging := make(chan int, 1)
			defer procxy.OnEvent(calc, "hanging", func(pid int) { hanging <- pid })()
			var killed atomic.Int64
			errc := make(chan error, 1)
			var got int
			go func() {
				var err error
				got, err = procxy.Call[int](ctx, calc, "Hang", filepath.Join(t.TempDir(), "marker"))
				errc <- err
			}()
			pid := <-hanging
			killed.Store(int64(pid))
			testproc.Kill(pid)
			err = <-errc
			if !idempotent {
				if !errors.Is(err, procxy.ErrWorkerGone) || !strings.Contains(err.Error(), "fleet.Calc.Hang: the worker went away before answering") {
					t.Fatalf("Hang on a worker killed mid-call: %v; want ErrWorkerGone", err)
				}
				startFleetWorker(outer, addr) // back to two for the next run
				if _, err := procxy.WaitWorkers(ctx, conn, "fleet.Calc", 2); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err != nil || got == 0 || int64(got) == killed.Load() {
				t.Fatalf("idempotent Hang retried after its worker died: pid %d, %v; want an answer from another worker", got, err)
			}
		})
	}
}

// A worker with WorkerConcurrency(1) runs one call at a time: the second
// call starts when the first ends.
func TestFleetWorkerConcurrency(t *testing.T) {
	ctx := t.Context()
	conn := testbus.Worker(t, "fleet.Calc", procxy.Serving("fleet.Calc"), procxy.WorkerConcurrency(1))
	calc, err := procxy.NewRemote[FleetCalc](conn, procxy.Name("fleet.Calc"))
	if err != nil {
		t.Fatal(err)
	}
	defer calc.Close()
	hanging := make(chan int, 2)
	defer procxy.OnEvent(calc, "hanging", func(pid int) { hanging <- pid })()
	var cancels []context.CancelFunc
	errs := make(chan error, 2)
	for range 2 {
		cctx, stop := context.WithCancel(ctx)
		cancels = append(cancels, stop)
		go func() { _, err := procxy.Call[int](cctx, calc, "Hang", ""); errs <- err }()
	}
	<-hanging // one of them runs
	inFlight := func() int64 {
		ws, err := procxy.Workers(ctx, conn)
		if err != nil || len(ws) != 1 {
			t.Fatalf("Workers: %v, %v", ws, err)
		}
		return ws[0].InFlight
	}
	if n := inFlight(); n != 1 {
		t.Errorf("%d calls in flight on a worker with WorkerConcurrency(1)", n)
	}
	cancels[0]()
	cancels[1]()
	for range 2 {
		if err := <-errs; !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled Hang: %v", err)
		}
	}
}
