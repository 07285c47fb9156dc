package natsipc_test

import (
	"context"
	"testing"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/ipctest"
	"github.com/procxy/procxy/ipc/natsipc"
)

// natsBackend is an embedded nats-server on a random loopback port.
type natsBackend struct{ srv *natsipc.Server }

func (b *natsBackend) Connect(t testing.TB, opts ...ipc.Option) *ipc.Conn {
	t.Helper()
	c, err := natsipc.Connect(context.Background(), b.srv.URL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Features: NATS neither acknowledges routing nor tracks requests, so
// PublishSync cannot learn that nobody listened, and a peer's death is
// learnt from keepalives and heartbeats.
func (b *natsBackend) Features() ipctest.Features {
	return ipctest.Features{RoutingAcks: false, PeerDeath: false}
}

func TestConformance(t *testing.T) {
	ipctest.Run(t, func(t *testing.T) ipctest.Backend {
		return &natsBackend{srv: startServer(t, natsipc.ServerOptions{IPC: ipc.ServerOptions{MaxPayload: 64 << 10}})}
	})
}
