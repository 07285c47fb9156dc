package procxy_test

import (
	"testing"

	"github.com/procxy/procxy"
)

// Levels has narrow integers inside structs, slices and maps.
type Levels struct {
	Level int8
	Small []uint8 `msgpack:"small"`
	ByKey map[string]uint16
	Inner *struct{ Depth int16 }
}

type Nested struct{}

func init() { procxy.Register[Nested](nil) }

func (Nested) Set(l Levels) int8            { return l.Level }
func (Nested) Many(ls []Levels) int         { return len(ls) }
func (Nested) Wide(l map[string]int) Levels { return Levels{Level: int8(l["n"])} }
func (Nested) Raw(n int) map[string]int     { return map[string]int{"Level": n} }

// TestNestedNumbers: a number that does not fit a field, element or map
// value is an error naming the method, the argument and the path; one that
// fits converts. (Func and generated stubs take typed arguments: only Call
// can send a number that does not fit.)
func TestNestedNumbers(t *testing.T) {
	p, err := procxy.New[Nested](t.Context(), procxy.Logger(childLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx := t.Context()
	for _, c := range []struct {
		method string
		arg    any
		want   string
	}{
		{"Set", map[string]any{"Level": 300}, "procxy: Nested.Set: argument 1 (Levels.Level): 300 does not fit in int8"},
		{"Set", map[string]any{"small": []int{1, 256}}, "procxy: Nested.Set: argument 1 (Levels.Small[1]): 256 does not fit in uint8"},
		{"Set", map[string]any{"ByKey": map[string]int{"k": -1}}, `procxy: Nested.Set: argument 1 (Levels.ByKey["k"]): -1 does not fit in uint16`},
		{"Set", map[string]any{"Inner": map[string]any{"Depth": 1 << 20}}, "procxy: Nested.Set: argument 1 (Levels.Inner.Depth): 1048576 does not fit in int16"},
		{"Set", map[string]any{"Level": 1.5}, "procxy: Nested.Set: argument 1 (Levels.Level): 1.5 does not fit in int8"},
		{"Many", []any{map[string]any{}, map[string]any{"Level": -200}}, "procxy: Nested.Many: argument 1 ([1].Level): -200 does not fit in int8"},
	} {
		_, err := procxy.Call[any](ctx, p, c.method, c.arg)
		if err == nil || err.Error() != c.want {
			t.Errorf("%s(%v): got %v\nwant %s", c.method, c.arg, err, c.want)
		}
	}
	if got, err := procxy.Call[int8](ctx, p, "Set", map[string]any{"Level": -128.0}); err != nil || got != -128 {
		t.Errorf("Set(Level: -128.0) = %d, %v; want -128", got, err)
	}
	// A result that does not fit the caller's type.
	_, err = procxy.Call[Levels](ctx, p, "Raw", 1000)
	if want := "procxy: Nested.Raw: the result (Levels.Level): 1000 does not fit in int8"; err == nil || err.Error() != want {
		t.Errorf("Raw(1000) into Levels: %v\nwant %s", err, want)
	}
}
