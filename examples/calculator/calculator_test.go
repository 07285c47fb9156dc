package calculator_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/examples/calculator"
	"github.com/procxy/procxy/internal/gen"
	"github.com/procxy/procxy/internal/testbus"
)

// TestGenerated fails when calculator_procxy.go is not what `go generate`
// writes now. It runs the package's //go:generate line as written (with
// -o to write elsewhere), which in this repository finds the procxy
// command through go.work; outside a workspace (GOWORK=off) it runs the
// generator the command runs.
func TestGenerated(t *testing.T) {
	want, err := os.ReadFile("calculator_procxy.go")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "calculator_procxy.go")
	if work := goEnv(t, "GOWORK"); work == "" || work == "off" {
		t.Logf("not in a Go workspace: checking with internal/gen instead of the //go:generate line")
		src, err := gen.Generate(t.Context(), gen.Config{Type: "Calculator", Dir: ".", Output: out})
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, src, 0o666); err != nil {
			t.Fatal(err)
		}
	} else {
		args := generateLine(t, "calculator.go")
		cmd := exec.CommandContext(t.Context(), args[0], append(args[1:], "-o", out)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("//go:generate %s: %v\n%s", strings.Join(args, " "), err, b)
		}
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("calculator_procxy.go is stale: run go generate ./examples/calculator\nit should be:\n%s", got)
	}
}

// generateLine returns the words of file's //go:generate directive.
func generateLine(t *testing.T, file string) []string {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(src)) {
		if rest, ok := strings.CutPrefix(line, "//go:generate "); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatalf("%s has no //go:generate line", file)
	return nil
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	b, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return strings.TrimSpace(string(b))
}

func TestSlow(t *testing.T) {
	calc, err := calculator.NewCalculatorProxy(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer calc.Close()
	if d, err := calc.Slow(t.Context(), time.Millisecond); err != nil || d != time.Millisecond {
		t.Errorf("Slow(1ms) = %v, %v; want 1ms", d, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := calc.Slow(ctx, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Slow(1m) with a 50ms deadline: got %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("Slow(1m) with a 50ms deadline returned after %v", d)
	}
}

// TestStubsOnWorkers calls the generated stubs on a Remote: a worker
// (here a goroutine of this process; in production another process or
// host) serves Calculator on an ipc server, and CalculatorProxyOn makes
// the same stubs call it.
func TestStubsOnWorkers(t *testing.T) {
	ctx := t.Context()
	conn := testbus.Worker(t, "github.com/procxy/procxy/examples/calculator.Calculator")
	remote, err := procxy.NewRemote[calculator.Calculator](conn)
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	calc := calculator.CalculatorProxyOn(remote)
	if sum, err := calc.Sum(ctx, 1, 2, 3, 4); err != nil || sum != 10 {
		t.Fatalf("Sum(1, 2, 3, 4) on a worker = %d, %v", sum, err)
	}
	if sum, err := calc.Add(ctx, 2, 3); err != nil || sum != 5 {
		t.Fatalf("Add(2, 3) on a worker = %d, %v", sum, err)
	}
	var fib []int
	for v, err := range calc.Fibonacci(ctx, 6) {
		if err != nil {
			t.Fatal(err)
		}
		fib = append(fib, v)
	}
	if len(fib) != 6 {
		t.Fatalf("Fibonacci(6) on a worker: %v", fib)
	}
	if calc.Proxy != nil {
		t.Error("a stub on a Remote has a Proxy")
	}
}

// TestStubEvents: procxy.OnEvent takes a generated stub, on a child and on a
// pool; its events arrive before the call returns, and the remover stops
// them.
func TestStubEvents(t *testing.T) {
	ctx := t.Context()
	calc, err := calculator.NewCalculatorProxy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer calc.Close()
	pool, err := procxy.NewPool[calculator.Calculator](ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, stub := range []*calculator.CalculatorProxy{calc, calculator.CalculatorProxyOn(pool)} {
		var steps []int
		remove := procxy.OnEvent(stub, "step", func(i int) { steps = append(steps, i) })
		for round := range 100 {
			if n, err := stub.Steps(ctx, 3); err != nil || n != 3 {
				t.Fatalf("Steps(3) = %d, %v", n, err)
			}
			if len(steps) != 3*(round+1) {
				t.Fatalf("round %d: Steps returned with %d events delivered, want %d", round, len(steps), 3*(round+1))
			}
		}
		remove()
		if _, err := procxy.Call[int](ctx, stub, "Steps", 2); err != nil {
			t.Fatal(err)
		}
		if len(steps) != 300 {
			t.Errorf("a removed listener got events: %d, want 300", len(steps))
		}
	}
}

// TestStubCallbacksAndTimes: a func argument runs in the parent, and a
// time.Time keeps its nanoseconds and zone, through the stubs.
func TestStubCallbacksAndTimes(t *testing.T) {
	ctx := t.Context()
	calc, err := calculator.NewCalculatorProxy(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer calc.Close()
	parent := os.Getpid()
	got, err := calc.Apply(ctx, func(x int) (int, error) {
		if os.Getpid() != parent {
			return 0, errors.New("not in the parent")
		}
		return x * 10, nil
	}, 4)
	if err != nil || got != 40 {
		t.Errorf("Apply = %d, %v; want 40", got, err)
	}
	errOdd := &procxy.RemoteError{Code: "E_ODD", Message: "odd"}
	if _, err := calc.Apply(ctx, func(int) (int, error) { return 0, errOdd }, 3); !errors.Is(err, errOdd) {
		t.Errorf("Apply with a failing func: %v; want E_ODD", err)
	}
	// An error type nobody registered arrives as a *procxy.RemoteError with
	// its text, whose Name is the Go type.
	_, err = calc.Apply(ctx, func(int) (int, error) { return 0, &oddError{3} }, 3)
	var re *procxy.RemoteError
	if want := "procxy: Calculator.Apply: 3 is odd"; err == nil || err.Error() != want || !errors.As(err, &re) || re.Name != "*calculator_test.oddError" {
		t.Errorf("Apply with an unregistered error type: %v (%#v)\nwant %s", err, re, want)
	}
	at := time.Date(2024, 2, 29, 23, 59, 59, 999999999, time.FixedZone("IST", 5*3600+1800))
	later, err := calc.After(ctx, at, time.Nanosecond)
	name, off := later.Zone()
	if err != nil || !later.Equal(at.Add(time.Nanosecond)) || name != "IST" || off != 5*3600+1800 {
		t.Errorf("After = %v (%s %d), %v; want %v", later, name, off, err, at.Add(time.Nanosecond))
	}
}

type oddError struct{ n int }

func (e *oddError) Error() string { return strconv.Itoa(e.n) + " is odd" }
