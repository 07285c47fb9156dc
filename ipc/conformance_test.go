package ipc_test

import (
	"context"
	"testing"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/ipctest"
)

// localBackend is an ipc server on a private Unix socket; with endpoint
// set, the first connection is the server's own endpoint.
type localBackend struct {
	srv      *ipc.Server
	endpoint bool
	used     bool
}

func (b *localBackend) Connect(t testing.TB, opts ...ipc.Option) *ipc.Conn {
	t.Helper()
	if b.endpoint && !b.used && len(opts) == 0 {
		b.used = true
		return b.srv.Conn()
	}
	c, err := ipc.Dial(context.Background(), b.srv.Addr(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func (b *localBackend) Features() ipctest.Features {
	return ipctest.Features{RoutingAcks: true, PeerDeath: true}
}

func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		name     string
		endpoint bool
	}{{"clients", false}, {"server-endpoint", true}} {
		t.Run(tc.name, func(t *testing.T) {
			ipctest.Run(t, func(t *testing.T) ipctest.Backend {
				return &localBackend{srv: newServer(t, ipc.MaxPayload(64<<10)), endpoint: tc.endpoint}
			})
		})
	}
}
