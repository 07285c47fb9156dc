package procxy_test

import (
	"context"
	"testing"
	"time"

	"github.com/procxy/procxy"
)

// Clock echoes times, alone and inside values.
type Clock struct{}

func init() { procxy.Register[Clock](nil) }

type Stamped struct {
	At   time.Time
	List []time.Time
	ByID map[string]time.Time
	Ptr  *time.Time
	Any  any
}

func (Clock) Echo(t time.Time) time.Time     { return t }
func (Clock) EchoStamped(s Stamped) Stamped  { return s }
func (Clock) Zone(t time.Time) (string, int) { return t.Zone() } // unsupported shape: not called
func (Clock) Name(t time.Time) string {
	name, off := t.Zone()
	return name + " " + time.Duration(off*1e9).String()
}

var echoTime = procxy.Func("echoTime", func(_ context.Context, t time.Time) (time.Time, error) { return t, nil })

// sameTime fails t unless got is want exactly: the same instant, the same
// offset and zone name.
func sameTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	gn, go_ := got.Zone()
	wn, wo := want.Zone()
	if !got.Equal(want) || gn != wn || go_ != wo || got.Nanosecond() != want.Nanosecond() {
		t.Errorf("%s: got %v (%s %d), want %v (%s %d)", what, got, gn, go_, want, wn, wo)
	}
}

// TestTimeExact: a time.Time crosses between Go peers exactly, with its
// nanoseconds and zone, alone and inside structs, slices, maps and
// interfaces, through Call and Func.
func TestTimeExact(t *testing.T) {
	p, err := procxy.New[Clock](t.Context(), procxy.Logger(childLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer echoTime.Close()
	zone := time.FixedZone("CEST", 2*3600)
	times := []time.Time{
		time.Date(2024, 5, 17, 13, 45, 10, 123456789, zone),
		time.Date(1969, 7, 20, 20, 17, 40, 1, time.UTC),
		time.Date(2024, 5, 17, 13, 45, 10, 999999999, time.Local),
		time.Date(2300, 1, 1, 0, 0, 0, 5, time.FixedZone("", -3*3600-1800)),
		{},
	}
	ctx := t.Context()
	for _, want := range times {
		got, err := procxy.Call[time.Time](ctx, p, "Echo", want)
		if err != nil {
			t.Fatal(err)
		}
		sameTime(t, "Call Echo", got, want)
		got, err = echoTime.Call(ctx, want)
		if err != nil {
			t.Fatal(err)
		}
		sameTime(t, "Func", got, want)
		in := Stamped{At: want, List: []time.Time{want, want.Add(1)}, ByID: map[string]time.Time{"a": want}, Ptr: &want, Any: want}
		s, err := procxy.Call[Stamped](ctx, p, "EchoStamped", in)
		if err != nil {
			t.Fatal(err)
		}
		sameTime(t, "struct field", s.At, want)
		if len(s.List) != 2 || s.Ptr == nil {
			t.Fatalf("EchoStamped = %+v", s)
		}
		sameTime(t, "slice element", s.List[0], want)
		sameTime(t, "slice element", s.List[1], want.Add(1))
		sameTime(t, "map value", s.ByID["a"], want)
		sameTime(t, "pointer", *s.Ptr, want)
		if a, ok := s.Any.(time.Time); !ok {
			t.Errorf("any field: %T, want time.Time", s.Any)
		} else {
			sameTime(t, "any field", a, want)
		}
	}
	name, err := procxy.Call[string](ctx, p, "Name", times[0])
	if err != nil || name != "CEST 2h0m0s" {
		t.Errorf("the method saw %q, %v; want CEST 2h0m0s", name, err)
	}
}
