package procxy

import (
	"context"
	"iter"
	"reflect"
	"strings"
	"testing"

	"github.com/procxy/procxy/internal/gen"
)

// TestMethodShapes runs one table of method shapes through the runtime's
// check (analyze, by reflection) and procxy gen's (from source): both
// apply internal/shape, so they must agree, problem text included.
func TestMethodShapes(t *testing.T) {
	for _, c := range []struct {
		fn      any // a func of the method's signature, without receiver
		problem string
		stream  bool
	}{
		{func() {}, "", false},
		{func(int, string) int { return 0 }, "", false},
		{func(context.Context, int) (int, error) { return 0, nil }, "", false},
		{func(context.Context) error { return nil }, "", false},
		{func(error) string { return "" }, "", false},
		{func(int, ...string) int { return 0 }, "", false},
		{func(func(int) (int, error), int) (int, error) { return 0, nil }, "", false},
		{func(context.Context, func(context.Context, string) error) {}, "", false},
		{func(int) iter.Seq[int] { return nil }, "", true},
		{func(context.Context) iter.Seq2[int, error] { return nil }, "", true},
		{func() <-chan int { return nil }, "", true},
		{func(int, context.Context) error { return nil }, "context.Context is only recognised as the first parameter", false},
		{func(...error) {}, "a ...error parameter is not supported", false},
		{func(...func()) {}, "a ...func parameter is not supported", false},
		{func(int) (int, int) { return 0, 0 }, "its second result is int, want error", false},
		{func() (int, int, error) { return 0, 0, nil }, "it has 3 results; want at most a value and an error", false},
		{func() func() { return nil }, "its func() result cannot be sent to another process", false},
		{func() chan<- int { return nil }, "its chan<- int result cannot be sent to another process", false},
		{func() iter.Seq2[string, int] { return nil }, "its iter.Seq2[string,int] result cannot be sent to another process", false},
		{func(func()) iter.Seq[int] { return nil }, "a method that returns a stream cannot take a func", true},
	} {
		ft := reflect.TypeOf(c.fn)
		sig := strings.TrimPrefix(ft.String(), "func")
		in := []reflect.Type{reflect.TypeFor[struct{}]()}
		for i := range ft.NumIn() {
			in = append(in, ft.In(i))
		}
		var out []reflect.Type
		for i := range ft.NumOut() {
			out = append(out, ft.Out(i))
		}
		mt := reflect.FuncOf(in, out, ft.IsVariadic())
		m := analyze(reflect.Method{Name: "M", Type: mt, Func: reflect.MakeFunc(mt, nil)})
		if m.Problem != c.problem || m.Stream != c.stream {
			t.Errorf("runtime, M%s: problem %q, stream %v; want %q, %v", sig, m.Problem, m.Stream, c.problem, c.stream)
		}
		skip, err := gen.Skip(t.Context(), sig)
		if err != nil {
			t.Fatal(err)
		}
		// gen names types as Go source does.
		want := strings.ReplaceAll(c.problem, "[string,int]", "[string, int]")
		if skip != want {
			t.Errorf("procxy gen, M%s: skip %q, want %q", sig, skip, want)
		}
	}
}
