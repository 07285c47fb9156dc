//go:build linux

package ipc_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/rpc/wire"
)

// The protocol's operations, as a foreign client writes them (see
// docs/PROTOCOL.md).
const (
	opConnect uint16 = 1 + iota
	opInfo
	opPub
	opSub
	opUnsub
	opMsg
	opPing
	opPong
	opErr
	opAck
	opCancel
)

// rawClient speaks the wire protocol by hand, to send what no ipc client
// would.
type rawClient struct {
	t    testing.TB
	nc   net.Conn
	r    *wire.Reader
	ping uint32
}

func dialRaw(t testing.TB, addr string) *rawClient {
	t.Helper()
	nc, err := net.Dial("unix", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	// A hang guard, not a timing assertion: every read below expects the
	// server to answer or close.
	nc.SetReadDeadline(time.Now().Add(waitLimit))
	return &rawClient{t: t, nc: nc, r: wire.NewReader(nc, 1<<20)}
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *rawClient) send(op uint16, flags wire.Flags, id uint32, payload []byte) {
	c.t.Helper()
	c.write(append(wire.Header{Method: op, Flags: flags, ID: id, Len: uint32(len(payload))}.Append(nil), payload...))
}

// connect sends CONNECT and waits for INFO.
func (c *rawClient) connect(name string) {
	c.t.Helper()
	b, err := codec.Msgpack.Append(nil, map[string]any{"v": 1, "name": name})
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(opConnect, 0, 0, b)
	f, err := c.r.ReadFrame()
	if err != nil || f.Method != opInfo {
		c.t.Fatalf("answer to CONNECT: %v %v", f.Header, err)
	}
}

// rawErr is the body of an ERR frame.
type rawErr struct{ code, msg string }

func decodeErr(t testing.TB, p []byte) rawErr {
	var m map[string]any
	if err := codec.Msgpack.Unmarshal(p, &m); err != nil {
		t.Fatalf("ERR body: %v", err)
	}
	code, _ := m["code"].(string)
	msg, _ := m["msg"].(string)
	return rawErr{code, msg}
}

// expectErr reads until an ERR frame and returns it.
func (c *rawClient) expectErr() rawErr {
	c.t.Helper()
	for {
		f, err := c.r.ReadFrame()
		if err != nil {
			c.t.Fatalf("read while waiting for ERR: %v", err)
		}
		if f.Method == opErr {
			return decodeErr(c.t, f.Payload)
		}
	}
}

// expectClosed reads until the server closes the connection and returns
// the ERR frames it sent first.
func (c *rawClient) expectClosed() []rawErr {
	c.t.Helper()
	var errs []rawErr
	for {
		f, err := c.r.ReadFrame()
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET):
			return errs
		case err != nil:
			c.t.Fatalf("read while waiting for the server to close: %v", err)
		case f.Method == opErr:
			errs = append(errs, decodeErr(c.t, f.Payload))
		}
	}
}

// alive checks with a PING that the server still serves the connection
// and has handled everything sent before; it returns the ERR frames that
// came first.
func (c *rawClient) alive() []rawErr {
	c.t.Helper()
	c.ping++
	c.send(opPing, 0, c.ping, nil)
	var errs []rawErr
	for {
		f, err := c.r.ReadFrame()
		if err != nil {
			c.t.Fatalf("the server dropped the connection: %v (after %v)", err, errs)
		}
		switch {
		case f.Method == opPong && f.ID == c.ping:
			return errs
		case f.Method == opErr:
			errs = append(errs, decodeErr(c.t, f.Payload))
		}
	}
}

// rawMsg encodes a message body: subject, reply, header block, data.
func rawMsg(subject, reply string, header, data []byte) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(subject)))
	b = append(b, subject...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(reply)))
	b = append(b, reply...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

func pubFrame(msg []byte) []byte {
	return append(wire.Header{Method: opPub, Len: uint32(len(msg))}.Append(nil), msg...)
}

func rawHeader(k, v string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(k)))
	b = append(b, k...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

func rawSub(subject, queue string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(subject)))
	return append(append(b, subject...), queue...)
}

// badInputServer is a server with a healthy responder and subscriber, and
// check proves after each bad input that they are still served.
type badInputServer struct {
	s       *ipc.Server
	client  *ipc.Conn
	healthy func(t *testing.T)
}

func newBadInputServer(t *testing.T, opts ...ipc.ServerOption) *badInputServer {
	t.Helper()
	s := newServer(t, append([]ipc.ServerOption{ipc.MaxPayload(64 << 10), ipc.AuthTimeout(200 * time.Millisecond)}, opts...)...)
	responder := dial(t, s, ipc.Name("responder"))
	if _, err := responder.Subscribe("svc.echo", func(m *ipc.Msg) { m.Respond(m.Data) }); err != nil {
		t.Fatal(err)
	}
	news := make(chan *ipc.Msg, 64)
	if _, err := responder.Subscribe("news.>", func(m *ipc.Msg) { news <- m }); err != nil {
		t.Fatal(err)
	}
	if err := responder.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	client := dial(t, s, ipc.Name("healthy"))
	n := 0
	return &badInputServer{s: s, client: client, healthy: func(t *testing.T) {
		t.Helper()
		n++
		want := fmt.Sprint("still there ", n)
		resp, err := client.Request(t.Context(), "svc.echo", []byte(want))
		if err != nil || string(resp.Data) != want {
			t.Fatalf("a healthy client's request after the bad input: %v, %v", resp, err)
		}
		if err := client.Publish("news.ok", []byte(want)); err != nil {
			t.Fatal(err)
		}
		// The subscriber gets it: its connection survived too, and
		// anything the bad input made it receive came before.
		for {
			m := recv(t, news, "the healthy subscriber's message")
			if m.Subject == "news.ok" && string(m.Data) == want {
				break
			}
		}
		if st := responder.State(); st != ipc.StateConnected {
			t.Fatalf("the healthy responder is %v", st)
		}
	}}
}

// TestBadInputBeforeConnect: garbage, oversized and wrong first frames, and
// clients that say nothing or stall, are closed (with ERR where the server
// can say why) and the server keeps serving everyone else.
func TestBadInputBeforeConnect(t *testing.T) {
	b := newBadInputServer(t)
	addr := b.s.Addr()
	connect, _ := codec.Msgpack.Append(nil, map[string]any{"v": 1})
	for _, tc := range []struct {
		name  string
		bytes []byte
		code  string // the ERR code expected before the close; "" for none
	}{
		{"http", []byte("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"), "protocol"},
		{"tls-hello", []byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x01\x02\x03\x04\x05\x06"), "protocol"},
		{"huge-length", wire.Header{Method: opConnect, Len: 0xFFFFFFF0}.Append(nil), "protocol"},
		{"method-zero", wire.Header{Method: 0, Len: 0}.Append(nil), "protocol"},
		{"pub-first", append(wire.Header{Method: opPub, Len: 4}.Append(nil), 0, 1, 'x', 0), "protocol"},
		{"connect-not-msgpack", append(wire.Header{Method: opConnect, Len: 3}.Append(nil), "{x}"...), "protocol"},
		{"connect-then-garbage", append(append(wire.Header{Method: opConnect, Len: uint32(len(connect))}.Append(nil), connect...), "garbage!!!!!!!"...), "protocol"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.write(tc.bytes)
			errs := c.expectClosed()
			if tc.code != "" && (len(errs) == 0 || errs[0].code != tc.code) {
				t.Errorf("ERR frames before the close: %v, want code %s", errs, tc.code)
			}
			t.Logf("closed; ERR frames: %v", errs)
			b.healthy(t)
		})
	}
	t.Run("silent", func(t *testing.T) {
		before := b.s.Stats().AuthFailures
		var quiet []*rawClient
		for range 20 {
			quiet = append(quiet, dialRaw(t, addr))
		}
		partial := dialRaw(t, addr)
		partial.write(wire.Header{Method: opConnect, Len: 100}.Append(nil)[:5]) // half a header, then nothing
		b.healthy(t)
		for _, c := range append(quiet, partial) {
			c.expectClosed() // after AuthTimeout
		}
		if n := b.s.Stats().AuthFailures - before; n != 21 {
			t.Errorf("AuthFailures grew by %d, want 21", n)
		}
		b.healthy(t)
	})
}

// TestBadInputAfterConnect: a connected client that sends garbage,
// oversized frames, invalid subjects, malformed messages or unknown
// operations gets an ERR saying what was wrong; what breaks the framing
// ends its connection, what does not is refused and the connection goes
// on; the others never notice.
func TestBadInputAfterConnect(t *testing.T) {
	b := newBadInputServer(t)
	addr := b.s.Addr()

	fatal := []struct {
		name  string
		bytes []byte
	}{
		{"garbage", []byte("\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff\xff")},
		{"oversized-frame", wire.Header{Method: opPub, Len: 64<<10 + 2*1024 + 4096 + 1}.Append(nil)},
		{"frame-4GiB", wire.Header{Method: opPub, Len: 0xFFFFFFFF}.Append(nil)},
		{"reserved-flags", wire.Header{Method: opPing, Flags: 0xC0}.Append(nil)},
		{"pub-flags", append(wire.Header{Method: opPub, Flags: 0x30, Len: 9}.Append(nil), rawMsg("a", "", nil, nil)...)},
		{"truncated-msg", append(wire.Header{Method: opPub, Len: 3}.Append(nil), 0, 9, 'a')},
		{"header-len-past-end", func() []byte {
			m := rawMsg("news.x", "", nil, nil)
			binary.BigEndian.PutUint32(m[len(m)-4:], 1000)
			return append(wire.Header{Method: opPub, Len: uint32(len(m))}.Append(nil), m...)
		}()},
		// Header blocks the subscribers could not decode never reach them.
		{"bad-header-block", pubFrame(rawMsg("news.x", "", []byte("abc"), []byte("data")))},
		{"bad-reserved-header", pubFrame(rawMsg("news.x", "", rawHeader("Ipc-Seq", "not a number"), nil))},
		{"sub-lengths", append(wire.Header{Method: opSub, ID: 1, Len: 4}.Append(nil), 0xff, 0xff, 'a', 'b')},
		{"unknown-op", wire.Header{Method: 200}.Append(nil)},
		{"server-only-op", wire.Header{Method: opMsg, Len: 0}.Append(nil)},
		{"connect-twice", append(wire.Header{Method: opConnect, Len: 1}.Append(nil), 0x80)},
	}
	for _, tc := range fatal {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, addr)
			c.connect("bad-" + tc.name)
			c.write(tc.bytes)
			errs := c.expectClosed()
			if len(errs) == 0 || errs[0].code != "protocol" {
				t.Errorf("ERR frames before the close: %v, want one saying what broke the protocol", errs)
			} else {
				t.Logf("told: %s", errs[0].msg)
			}
			b.healthy(t)
		})
	}

	bigData := make([]byte, 64<<10+1024+1)
	refused := []struct {
		name    string
		op      uint16
		payload []byte
		code    string
	}{
		{"empty-subject", opPub, rawMsg("", "", nil, nil), "bad_subject"},
		{"empty-token", opPub, rawMsg("news..x", "", nil, nil), "bad_subject"},
		{"space", opPub, rawMsg("news. x", "", nil, nil), "bad_subject"},
		{"wildcard-publish", opPub, rawMsg("news.*", "", nil, nil), "bad_subject"},
		{"full-wildcard-publish", opPub, rawMsg(">", "", nil, nil), "bad_subject"},
		{"bad-reply", opPub, rawMsg("news.x", "reply with spaces", nil, nil), "bad_subject"},
		{"bad-sub", opSub, rawSub("news.>.x", ""), "bad_subject"},
		{"empty-sub", opSub, rawSub("", ""), "bad_subject"},
		{"bad-queue", opSub, rawSub("news.x", "a queue"), "bad_subject"},
		{"broadcast-subject", opPub, rawMsg("$IPC.BCAST.alert", "", nil, nil), "permission"},
		{"too-large", opPub, rawMsg("news.x", "", nil, bigData), "max_payload"},
	}
	c := dialRaw(t, addr)
	c.connect("refused")
	for i, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			c.send(tc.op, 0, uint32(i+10), tc.payload)
			errs := c.alive()
			if len(errs) != 1 || errs[0].code != tc.code {
				t.Errorf("ERR frames: %v, want one with code %s", errs, tc.code)
			} else {
				t.Logf("told: %s", errs[0].msg)
			}
			b.healthy(t)
		})
	}
}

// TestBadInputVanishMidRequest: a raw client that sends a request and
// closes its socket while the responder works: the responder's context is
// cancelled, and the server forgets the request.
func TestBadInputVanishMidRequest(t *testing.T) {
	b := newBadInputServer(t)
	got := make(chan struct{}, 1)
	ended := make(chan error, 1)
	if _, err := ipc.Handle(b.client, "svc.slow", func(ctx context.Context, _ []byte) ([]byte, error) {
		got <- struct{}{}
		<-ctx.Done()
		ended <- ipc.Cause(ctx)
		return nil, ctx.Err()
	}, ipc.WithCodec(codec.Raw)); err != nil {
		t.Fatal(err)
	}
	if err := b.client.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, b.s.Addr())
	c.connect("vanisher")
	c.send(opSub, 0, 1, rawSub("_INBOX.vanisher.*", ""))
	c.send(opPub, 0x01, 0, rawMsg("svc.slow", "_INBOX.vanisher.1", nil, []byte("work")))
	recv(t, got, "the request at the responder")
	c.nc.Close()
	if cause := recv(t, ended, "the responder's context to end"); cause == nil {
		t.Error("the responder's context ended without a cause")
	} else {
		t.Logf("responder's context: %v", cause)
	}
	b.healthy(t)
	if n := b.s.Stats().RequestsInFlight; n != 0 {
		t.Errorf("RequestsInFlight = %d after the requester vanished", n)
	}
}

// TestBadInputStalledFrame: a client that starts a frame and never
// finishes it is dropped by the heartbeat, not waited for forever.
func TestBadInputStalledFrame(t *testing.T) {
	b := newBadInputServer(t, ipc.Heartbeat(100*time.Millisecond))
	c := dialRaw(t, b.s.Addr())
	c.connect("staller")
	c.write(append(wire.Header{Method: opPub, Len: 1000}.Append(nil), "only a few bytes"...))
	b.healthy(t)
	c.expectClosed()
	b.healthy(t)
}
