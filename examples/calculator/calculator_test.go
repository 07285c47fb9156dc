package calculator_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
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
