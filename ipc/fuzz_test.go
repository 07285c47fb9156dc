package ipc_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/rpc/wire"
	"github.com/procxy/procxy/transport"
)

// FuzzMsg feeds arbitrary payloads to the message decoder: it never
// panics, and what it accepts encodes back to a payload that decodes to
// the same message.
func FuzzMsg(f *testing.F) {
	for _, m := range []*ipc.Msg{
		{Subject: "a"},
		{Subject: "orders.new", Reply: "_INBOX.abc.1", Data: []byte("hello")},
		{Subject: "h", Header: ipc.Header{"K": {"v1", "v2"}, "traceparent": {"00-1-2-01"}}, Data: []byte{0, 1, 2}},
		{Subject: "t", Expires: time.Unix(1700000000, 5)},
	} {
		f.Add(ipc.AppendMsg(nil, m))
	}
	f.Add([]byte{0, 1, 'a', 0, 0, 0, 0, 0, 13, 0, 11, 'I', 'p', 'c', '-', 'S', 't', 'a', 't', 'u', 's', 0, 0, 0, 3, '5', '0', '3'})
	f.Add([]byte{0xff, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		m, err := ipc.DecodeMsg(p)
		if err != nil {
			if !errors.Is(err, ipc.ErrProtocol) {
				t.Fatalf("error %v does not wrap ErrProtocol", err)
			}
			return
		}
		again, err := ipc.DecodeMsg(ipc.AppendMsg(nil, m))
		if err != nil {
			t.Fatalf("re-encoded message does not decode: %v", err)
		}
		if again.Subject != m.Subject || again.Reply != m.Reply || !bytes.Equal(again.Data, m.Data) ||
			!again.Expires.Equal(m.Expires) || len(again.Header) != len(m.Header) {
			t.Fatalf("round trip changed the message: %+v → %+v", m, again)
		}
		for k, v := range m.Header {
			if !slices.Equal(again.Header[k], v) {
				t.Fatalf("header %q: %q → %q", k, v, again.Header[k])
			}
		}
	})
}

// FuzzSub feeds arbitrary SUB bodies to their decoder.
func FuzzSub(f *testing.F) {
	f.Add([]byte{0, 3, 'a', '.', 'b', 'q'})
	f.Add([]byte{0, 0})
	f.Add([]byte{0xff, 0xff, 'x'})
	f.Fuzz(func(t *testing.T, p []byte) {
		s, q, err := ipc.ParseSub(p)
		if err != nil {
			return
		}
		if len(s) > ipc.MaxSubjectLen || len(q) > ipc.MaxSubjectLen {
			t.Fatalf("accepted a subject of %d and a queue of %d bytes", len(s), len(q))
		}
	})
}

// FuzzSublist checks the subscription index against the matching rules:
// a subject reaches exactly the patterns SubjectMatches says it does.
func FuzzSublist(f *testing.F) {
	f.Add("a.b a.* a.> *.b > a.*.c *", "a.b")
	f.Add("foo.> foo.*.baz *.*.* foo", "foo.bar.baz")
	f.Add("a a.a a.a.a >", "a.a.a.a")
	f.Fuzz(func(t *testing.T, pats, subject string) {
		if !ipc.ValidLiteral(subject) {
			return
		}
		var patterns []string
		for p := range strings.FieldsSeq(pats) {
			if ipc.ValidSubject(p) && len(patterns) < 16 {
				patterns = append(patterns, p)
			}
		}
		plain, queued := ipc.MatchSublist(patterns, subject)
		got := append(plain, queued...)
		var want []string
		for _, p := range patterns {
			if ipc.SubjectMatches(p, subject) {
				want = append(want, p)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("patterns %q, subject %q: index gives %q, the rules %q", patterns, subject, got, want)
		}
	})
}

// FuzzServer sends an authenticated connection's worth of arbitrary
// frames to a server: it never panics, it closes that connection or keeps
// it, and it keeps serving a healthy client.
func FuzzServer(f *testing.F) {
	frame := func(op uint16, flags wire.Flags, id uint32, p []byte) []byte {
		return append(wire.Header{Method: op, Flags: flags, ID: id, Len: uint32(len(p))}.Append(nil), p...)
	}
	sub := binary.BigEndian.AppendUint16(nil, 3)
	sub = append(sub, "a.b"...)
	pub := ipc.AppendMsg(nil, &ipc.Msg{Subject: "a.b", Reply: "_INBOX.x.1", Data: []byte("d")})
	f.Add(frame(4, 0, 1, sub))                                    // SUB
	f.Add(append(frame(4, 0, 1, sub), frame(3, 0x01, 0, pub)...)) // SUB then a request to itself
	f.Add(frame(3, 0x08, 7, pub))                                 // PUB waiting for an ACK
	f.Add(frame(11, 0, 0, []byte("_INBOX.x.1")))                  // CANCEL
	f.Add(frame(7, 0, 9, nil))                                    // PING
	f.Add(frame(3, 0, 0, []byte{0, 200}))                         // a truncated message
	f.Add(frame(1, 0, 0, []byte{0x80}))                           // CONNECT twice
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	s, err := ipc.NewServer(ipc.MaxPayload(1<<16), ipc.AuthTimeout(time.Second))
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	ln := newPipeListener()
	go s.Serve(context.Background(), ln)
	healthy := dialPipe(f, ln)
	defer healthy.Close()
	ipc.Handle(healthy, "ping", func(ctx context.Context, x int) (int, error) { return x + 1, nil })
	healthy.Flush(context.Background())
	connect := frame(1, 0, 0, []byte{0x81, 0xa1, 'v', 0x01}) // CONNECT {v: 1}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, srv := transport.Pipe()
		ln.conns <- srv
		c.Write(connect)
		c.Write(data)
		c.(interface{ CloseWrite() error }).CloseWrite()
		buf := make([]byte, 4096)
		for { // the server answers and eventually closes, or waits for more
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := c.Read(buf); err != nil {
				break
			}
		}
		c.Close()
		v, err := ipc.Call[int](context.Background(), healthy, "ping", 41)
		if err != nil || v != 42 {
			t.Fatalf("after the hostile input the server answers %d, %v", v, err)
		}
	})
}

// pipeListener hands in-memory connections to a server.
type pipeListener struct {
	conns chan net.Conn
	done  chan struct{}
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	select {
	case <-l.done:
	default:
		close(l.done)
	}
	return nil
}

func (l *pipeListener) Addr() net.Addr { return pipeAddr{} }

type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// dialPipe connects a client to a server serving ln.
func dialPipe(t testing.TB, ln *pipeListener) *ipc.Conn {
	t.Helper()
	c, err := ipc.Dial(context.Background(), "pipe", ipc.WithDialer(func(ctx context.Context) (net.Conn, error) {
		a, b := transport.Pipe()
		select {
		case ln.conns <- b:
			return a, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
