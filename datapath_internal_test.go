package procxy

import (
	"context"
	"reflect"
	"testing"

	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/transport"
)

type allocCalc struct{}

func (allocCalc) Add(a, b int) int { return a + b }

// TestServeAllocs pins the allocations of serving one object-proxy call —
// decoding the arguments into the parameter types, the reflective call,
// the reply — measured with the caller in the same process over an
// in-memory pipe. The caller's part (arguments encoded into a reused
// buffer) allocates only the result variable; serving allocates the
// request, one struct holding all the arguments, and reflect's result
// slice.
func TestServeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts; scripts/test runs this without -race")
	}
	m := analyze(reflect.TypeFor[allocCalc]().Method(0))
	m.ID = firstMethodID
	mux := new(rpc.Mux)
	mux.Handle(m.ID, handlerFor(m, reflect.ValueOf(allocCalc{}), nil))
	a, b := transport.Pipe()
	srv := rpc.NewConn(b, rpc.Options{Role: rpc.RoleChild, Handlers: mux})
	cli := rpc.NewConn(a, rpc.Options{Role: rpc.RoleParent})
	defer srv.Close()
	defer cli.Close()
	var vec codec.Vec
	args := []any{200, 3}
	allocs := testing.AllocsPerRun(2000, func() {
		vec.Reset()
		codec.AppendMsgpackArray(&vec, args)
		var sum int
		if err := cli.Call(context.Background(), rpc.Method{ID: m.ID}, &vec, &sum); err != nil || sum != 203 {
			t.Fatalf("Add = %d, %v", sum, err)
		}
	})
	t.Logf("%.2f allocations per call (caller and server)", allocs)
	if allocs > 5 {
		t.Errorf("%.2f allocations per call, want at most 5", allocs)
	}
}
