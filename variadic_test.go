package procxy_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/procxy/procxy"
)

// Variadic has methods whose last parameter is ...E.
type Variadic struct{}

func (*Variadic) Sum(base int, xs ...int) int {
	for _, x := range xs {
		base += x
	}
	return base
}

// Args says what the method got: how many, and whether the slice is nil.
func (*Variadic) Args(xs ...string) string { return fmt.Sprintf("%d %v %q", len(xs), xs == nil, xs) }

func init() { procxy.Register[Variadic](nil) }

// Variadic methods are called as in Go: the variadic arguments one by one.
func TestVariadic(t *testing.T) {
	ctx := t.Context()
	p, err := procxy.New[Variadic](ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, c := range []struct {
		args []any
		want int
	}{{[]any{1}, 1}, {[]any{1, 2}, 3}, {[]any{1, 2, 3, 4}, 10}} {
		if got, err := procxy.Call[int](ctx, p, "Sum", c.args...); err != nil || got != c.want {
			t.Errorf("Sum%v = %d, %v; want %d", c.args, got, err, c.want)
		}
	}
	if got, err := procxy.Call[string](ctx, p, "Args"); err != nil || got != `0 true []` {
		t.Errorf("Args() = %s, %v; want no arguments as a nil slice", got, err)
	}
	if got, err := procxy.Call[string](ctx, p, "Args", "a", "b"); err != nil || got != `2 false ["a" "b"]` {
		t.Errorf(`Args("a", "b") = %s, %v`, got, err)
	}

	_, err = procxy.Call[int](ctx, p, "Sum")
	var re *procxy.RemoteError
	if !errors.As(err, &re) || re.Code != procxy.CodeBadArguments || err.Error() != "procxy: Variadic.Sum: takes at least 1 argument, got 0" {
		t.Errorf("Sum(): %v", err)
	}
	_, err = procxy.Call[int](ctx, p, "Sum", 1, 2, "three")
	if !errors.As(err, &re) || err.Error() != "procxy: Variadic.Sum: argument 3 is a string, want int" {
		t.Errorf(`Sum(1, 2, "three"): %v`, err)
	}
}
