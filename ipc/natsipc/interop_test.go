package natsipc_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/natsipc"
	"github.com/procxy/procxy/rpc/codec"
)

// TestPlainNATSPeers: programs that use nats.go (or any NATS client)
// directly talk to ipc connections: they request and answer with plain
// messages, and follow the package's conventions to cancel a request or
// give it a deadline.
func TestPlainNATSPeers(t *testing.T) {
	srv := startServer(t, natsipc.ServerOptions{})
	c := connect(t, srv.URL())
	nc, err := nats.Connect(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	t.Run("nats requester, ipc responder", func(t *testing.T) {
		ipc.Handle(c, "upper", func(ctx context.Context, p []byte) ([]byte, error) {
			out := make([]byte, len(p))
			for i, b := range p {
				if 'a' <= b && b <= 'z' {
					b -= 'a' - 'A'
				}
				out[i] = b
			}
			return out, nil
		}, ipc.WithCodec(codec.Raw))
		flush(t, c)
		m, err := nc.RequestWithContext(t.Context(), "upper", []byte("hello"))
		if err != nil || string(m.Data) != "HELLO" {
			t.Fatalf("Request = %v, %v", m, err)
		}
		if len(m.Header) != 0 {
			t.Errorf("a plain answer carries headers %v", m.Header)
		}
	})

	t.Run("ipc requester, nats responder", func(t *testing.T) {
		sub, err := nc.Subscribe("plain", func(m *nats.Msg) { m.Respond(append([]byte("re: "), m.Data...)) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		nc.Flush()
		r, err := c.Request(t.Context(), "plain", []byte("x"))
		if err != nil || string(r.Data) != "re: x" {
			t.Errorf("Request = %v, %v", r, err)
		}
	})

	t.Run("cancel and deadline conventions", func(t *testing.T) {
		type seen struct {
			deadline time.Time
			err      error
		}
		got := make(chan seen, 1)
		c.Subscribe("slow", func(m *ipc.Msg) {
			ctx := m.Context()
			dl, _ := ctx.Deadline()
			<-ctx.Done()
			got <- seen{dl, context.Cause(ctx)}
		})
		flush(t, c)
		reply := nc.NewRespInbox()
		req := nats.NewMsg("slow")
		req.Reply = reply
		req.Header.Set("Ipc-Timeout", strconv.FormatInt(int64(time.Hour), 10))
		start := time.Now()
		if err := nc.PublishMsg(req); err != nil {
			t.Fatal(err)
		}
		nc.Flush()
		flush(t, c) // the request has reached the responder
		if err := nc.Publish(natsipc.CancelPrefix+reply, nil); err != nil {
			t.Fatal(err)
		}
		s := <-got
		if s.deadline.Before(start.Add(59*time.Minute)) || s.deadline.After(time.Now().Add(time.Hour)) {
			t.Errorf("the responder's deadline is %v, want an hour from the request", s.deadline)
		}
		if !errors.Is(s.err, context.Canceled) {
			t.Errorf("the responder's context ended with %v, want Canceled", s.err)
		}
	})
}
