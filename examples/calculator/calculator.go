// Package calculator shows procxy with generated stubs. Calculator is an
// ordinary Go type; `procxy gen` wrote [CalculatorProxy], whose methods run
// a Calculator's methods in a child process with the same signatures plus a
// context first and an error last:
//
//	calc, err := calculator.NewCalculatorProxy(ctx) // starts the child
//	if err != nil { … }
//	defer calc.Close()
//	sum, err := calc.Add(ctx, 2, 3) // 5, computed in the child
//
// The program (or test binary) must call procxy.Main first thing in main
// (or TestMain): the child is the same executable, re-run.
package calculator

//go:generate go run github.com/procxy/procxy/cmd/procxy gen -type Calculator

import (
	"context"
	"iter"
	"time"

	"github.com/procxy/procxy"
)

// Calculator does arithmetic. It has no state, so it is safe for concurrent
// use; its Emitter sends Steps' events to the parent's listeners
// (procxy.OnEvent).
type Calculator struct{ procxy.Emitter }

func init() { procxy.Register[Calculator](nil) }

// ErrDivByZero is Div's error for a zero divisor. It reaches the parent as
// a *procxy.RemoteError with the same Code, which errors.Is matches.
var ErrDivByZero = &procxy.RemoteError{Code: "E_DIV_ZERO", Message: "division by zero"}

// Add returns a + b.
func (*Calculator) Add(a, b int) int { return a + b }

// Sum adds any number of ints.
func (*Calculator) Sum(xs ...int) int {
	total := 0
	for _, x := range xs {
		total += x
	}
	return total
}

// Div returns a / b, or ErrDivByZero if b is zero.
func (*Calculator) Div(a, b float64) (float64, error) {
	if b == 0 {
		return 0, ErrDivByZero
	}
	return a / b, nil
}

// Slow waits for d and returns it, or returns ctx.Err() if ctx ends first.
func (*Calculator) Slow(ctx context.Context, d time.Duration) (time.Duration, error) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return d, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// Fibonacci yields the first n Fibonacci numbers.
func (*Calculator) Fibonacci(n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		a, b := 0, 1
		for range n {
			if !yield(a) {
				return
			}
			a, b = b, a+b
		}
	}
}

// Steps emits a "step" event for each of 1..n, then returns n. Like a
// local call, the events have reached the parent's listeners when the
// call returns.
func (c *Calculator) Steps(n int) (int, error) {
	for i := 1; i <= n; i++ {
		if err := c.Emit("step", i); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// Apply returns f(x): f is a func of the caller, which runs where the
// caller is.
func (*Calculator) Apply(f func(int) (int, error), x int) (int, error) { return f(x) }

// After returns t + d; t keeps its nanoseconds and zone.
func (*Calculator) After(t time.Time, d time.Duration) time.Time { return t.Add(d) }
