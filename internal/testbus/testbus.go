// Package testbus runs a procxy worker on an ipc server inside a test's
// own process, for tests of the callers' side of worker fleets.
package testbus

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/ipc"
)

// Worker starts an ipc server on a socket in the test's temporary
// directory, runs procxy.Serve with opts on the server's own connection
// until the test ends (an error from Serve fails the test), and returns a
// client connection once the worker serves key.
func Worker(t *testing.T, key string, opts ...procxy.WorkerOption) *ipc.Conn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := ipc.Listen(ctx, filepath.Join(t.TempDir(), "bus.sock"))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	served := make(chan error, 1)
	go func() { served <- procxy.Serve(ctx, srv.Conn(), opts...) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	conn, err := ipc.Dial(ctx, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := procxy.WaitWorkers(ctx, conn, key, 1); err != nil {
		t.Fatal(err)
	}
	return conn
}
