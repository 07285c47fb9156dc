package ipc_test

import (
	"context"
	"testing"

	"github.com/procxy/procxy/ipc"
)

// TestRequestAllocs pins the allocations of a request from a client to a
// handler of the server's own endpoint over a Unix socket — the client's
// and the server's together, both in this process. Run without -race
// (scripts/test does): the race detector allocates on its own.
func TestRequestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector changes allocation counts; scripts/test runs this without -race")
	}
	s := newServer(t)
	c := dial(t, s)
	if _, err := s.Conn().Subscribe("echo", func(m *ipc.Msg) { m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	data := make([]byte, 16)
	var err error
	allocs := testing.AllocsPerRun(2000, func() {
		if _, e := c.Request(ctx, "echo", data); e != nil {
			err = e
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%.2f allocations per request", allocs)
	// Client: the request's copy, its reply subject, the decoded reply.
	// Server: the decoded request, the tracked request and its reply
	// subject as a key, the reply Msg the handler's Respond makes.
	const max = 7
	if allocs > max {
		t.Errorf("%.2f allocations per request, want at most %d", allocs, max)
	}
}
