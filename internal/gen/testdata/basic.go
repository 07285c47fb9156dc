//go:generate procxy gen -type Calculator

// Package basic has plain methods: with and without a context, with value,
// error and no results, on pointer and value receivers, with parameters
// that must be renamed.
package basic

import (
	"context"
	"errors"
)

type Calculator struct{ base int }

type Point struct{ X, Y int }

// Add has a value receiver and a value result.
func (c Calculator) Add(a, b int) int { return c.base + a + b }

// Div has a pointer receiver and a value and an error.
func (c *Calculator) Div(a, b float64) (float64, error) {
	if b == 0 {
		return 0, errors.New("division by zero")
	}
	return a / b, nil
}

// Sleep takes a context, which the stub's ctx replaces.
func (c *Calculator) Sleep(ctx context.Context, ms int) (int, error) { return ms, ctx.Err() }

// Check takes only a context and returns only an error.
func (c *Calculator) Check(ctx context.Context) error { return ctx.Err() }

// Reset has no parameters and no results.
func (c *Calculator) Reset() { c.base = 0 }

// Scale has unnamed parameters.
func (c *Calculator) Scale(float64, int) []float64 { return nil }

// Fill has a blank parameter, and one named like a type its result uses.
func (c *Calculator) Fill(_ int, float64 float64) []float64 { return nil }

// Rename has parameters that would shadow the stub's own names.
func (c *Calculator) Rename(ctx string, p int, err bool, any []byte, a0 string) string { return ctx }

// Origin and Move use the package's own types.
func (c *Calculator) Origin() Point { return Point{} }

func (c *Calculator) Move(pt *Point, by map[string][]Point) (*Point, error) { return pt, nil }

// Close hides procxy.Proxy.Close in the stubs.
func (c *Calculator) Close() error { return nil }

func (c *Calculator) helper() int { return c.base } // unexported: no stub
