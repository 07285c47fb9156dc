package natsipc_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/natsipc"
)

// BenchmarkRequest compares a request/reply through natsipc with the same
// through bare nats.go, on one embedded server (16-byte payloads).
func BenchmarkRequest(b *testing.B) {
	srv := startServer(b, natsipc.ServerOptions{})
	payload := make([]byte, 16)
	b.Run("natsipc", func(b *testing.B) {
		resp, req := connect(b, srv.URL()), connect(b, srv.URL())
		resp.Subscribe("echo", func(m *ipc.Msg) { m.Respond(m.Data) })
		resp.Flush(context.Background())
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := req.Request(ctx, "echo", payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("nats.go", func(b *testing.B) {
		resp, err := nats.Connect(srv.URL())
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Close()
		req, err := nats.Connect(srv.URL())
		if err != nil {
			b.Fatal(err)
		}
		defer req.Close()
		resp.Subscribe("echo", func(m *nats.Msg) { m.Respond(m.Data) })
		resp.Flush()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := req.Request("echo", payload, 10*time.Second); err != nil {
				b.Fatal(err)
			}
		}
	})
}
