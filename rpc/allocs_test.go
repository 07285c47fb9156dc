package rpc_test

import (
	"context"
	"testing"

	"github.com/procxy/procxy/rpc"
)

// TestAllocs pins the allocations of a whole round trip — the caller's and
// the serving side's together, both in this process — over a Unix socket.
// A regression fails here, not only in a benchmark. Run without -race
// (scripts/test does): the race detector allocates on its own.
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts; scripts/test runs this without -race")
	}
	cli, _ := pair(t, "unix", rpc.Options{Handlers: newService().mux()}, rpc.Options{})
	ctx := context.Background()
	in := make([]byte, 16)
	out := make([]byte, 0, 16)
	tests := []struct {
		name string
		max  float64
		call func() error
	}{
		// Caller: in boxed as an any. Server: the request (which holds the
		// small payload the handler gets, and boxes its result).
		{"raw16", 2, func() error { return cli.Call(ctx, echoRaw, in, &out) }},
		// Caller: the result variable, which escapes. Server: the request
		// and the decoded argument. (The argument is a constant: no box.)
		{"add", 3, func() error {
			var sum int
			return cli.Call(ctx, add, addArgs{2, 3}, &sum)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			allocs := testing.AllocsPerRun(2000, func() {
				if e := tt.call(); e != nil {
					err = e
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%.2f allocations per round trip", allocs)
			if allocs > tt.max {
				t.Errorf("%.2f allocations per round trip, want at most %v", allocs, tt.max)
			}
		})
	}
}
