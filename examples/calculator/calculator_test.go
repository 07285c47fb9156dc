package calculator_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/procxy/procxy/examples/calculator"
	"github.com/procxy/procxy/internal/cli"
)

// TestGenerated fails when calculator_procxy.go is not what `go generate`
// writes now.
func TestGenerated(t *testing.T) {
	want, err := os.ReadFile("calculator_procxy.go")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "calculator_procxy.go")
	var stderr bytes.Buffer
	if err := cli.Run(t.Context(), []string{"gen", "-type", "Calculator", "-o", out, "."}, nil, &stderr, &stderr); err != nil {
		t.Fatalf("procxy gen: %v\n%s", err, stderr.String())
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("calculator_procxy.go is stale: run go generate ./examples/calculator\nit should be:\n%s", got)
	}
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
