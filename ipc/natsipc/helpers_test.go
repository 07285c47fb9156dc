package natsipc_test

import (
	"testing"

	"github.com/procxy/procxy/ipc/natsipc"
)

// startServer starts an embedded nats-server for one test.
func startServer(t testing.TB, o natsipc.ServerOptions) *natsipc.Server {
	t.Helper()
	s, err := natsipc.StartServer(t.Context(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
