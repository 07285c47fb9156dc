//go:build linux

package childproc_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/procxy/procxy/childproc"
)

// connPair returns the two ends of an AF_UNIX stream socketpair, like the
// one Node creates for 'ipc'. Both are closed at the end of the test.
func connPair(t testing.TB) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "pair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		t.Cleanup(func() { c.Close() })
	}
	return conns[0], conns[1]
}

// channelPair returns two connected Channels, disconnected at the end.
func channelPair(t testing.TB, max int) (*childproc.Channel, *childproc.Channel) {
	t.Helper()
	a, b := connPair(t)
	ca, cb := childproc.NewChannel(a, max), childproc.NewChannel(b, max)
	t.Cleanup(func() { ca.Disconnect(); cb.Disconnect() })
	return ca, cb
}

// rawPeer returns a Channel and the raw socket of its peer.
func rawPeer(t testing.TB, max int) (*childproc.Channel, net.Conn) {
	t.Helper()
	a, b := connPair(t)
	ch := childproc.NewChannel(a, max)
	t.Cleanup(func() { ch.Disconnect() })
	return ch, b
}

// decode returns the generic value of a JSON text, numbers kept exact.
func decode(t testing.TB, b []byte) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

func TestChannelRoundTrip(t *testing.T) {
	a, b := channelPair(t, 0)
	values := []any{
		"plain", "", 42, -1.5, 1e21, nil, true, false,
		map[string]any{"nested": map[string]any{"deeper": []any{1, "x", nil, map[string]any{}}}},
		"é€😀 \u2028 \"quoted\" \\ \n newline \u0001 <a&b>",
		[]any{}, strings.Repeat("large ", 200000),
		json.RawMessage(`{"raw" : [1, 2]}`),
	}
	errc := make(chan error, 1)
	go func() {
		for _, v := range values {
			if err := a.Send(t.Context(), v); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for _, v := range values {
		m := <-b.Messages()
		want, _ := json.Marshal(v)
		if got := decode(t, m); !reflect.DeepEqual(got, decode(t, want)) {
			t.Errorf("got %.80s, want %.80s", m, want)
		}
		if strings.ContainsRune(string(m), '\n') {
			t.Errorf("message %.80q contains a newline", m)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestChannelOrder sends many messages from several goroutines: lines
// never interleave and each sender's order is kept.
func TestChannelOrder(t *testing.T) {
	a, b := channelPair(t, 0)
	const senders, each = 4, 2500
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				if err := a.Send(t.Context(), []int{s, i}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	next := make([]int, senders)
	for range senders * each {
		var m [2]int
		if err := json.Unmarshal(<-b.Messages(), &m); err != nil {
			t.Fatal(err)
		}
		if m[1] != next[m[0]] {
			t.Fatalf("sender %d: got message %d, want %d", m[0], m[1], next[m[0]])
		}
		next[m[0]]++
	}
	wg.Wait()
}

func TestChannelSendRefuses(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want error // nil: accepted
	}{
		{"ack", map[string]string{"cmd": "NODE_HANDLE_ACK"}, childproc.ErrInternalMessage},
		{"custom", map[string]any{"cmd": "NODE_X", "x": 1}, childproc.ErrInternalMessage},
		{"escaped", json.RawMessage(`{"cmd":"\u004eODE_X"}`), childproc.ErrInternalMessage},
		{"duplicate-key-last-wins", json.RawMessage(`{"cmd":"ok","cmd":"NODE_X"}`), childproc.ErrInternalMessage},
		{"prefix-only", map[string]string{"cmd": "NODE_"}, nil},
		{"key-case", map[string]string{"CMD": "NODE_X"}, nil},
		{"not-a-string", map[string]int{"cmd": 5}, nil},
		{"nested", map[string]any{"x": map[string]string{"cmd": "NODE_X"}}, nil},
		{"top-level-string", "NODE_X", nil},
		{"too-large", strings.Repeat("x", 100), childproc.ErrMessageTooLarge},
		{"invalid-raw", json.RawMessage(`{"a":`), nil},
		{"unsupported", make(chan int), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := channelPair(t, 64)
			err := a.Send(t.Context(), tt.v)
			switch {
			case tt.name == "invalid-raw" || tt.name == "unsupported":
				if err == nil {
					t.Fatal("got nil, want an encoding error")
				}
			case tt.want != nil:
				if !errors.Is(err, tt.want) {
					t.Fatalf("got %v, want %v", err, tt.want)
				}
			default:
				if err != nil {
					t.Fatalf("got %v, want nil", err)
				}
				<-b.Messages()
			}
			if err != nil { // a refused message leaves the channel usable
				if err := a.Send(t.Context(), "next"); err != nil {
					t.Fatal(err)
				}
				if m := <-b.Messages(); string(m) != `"next"` {
					t.Errorf("got %s after a refused message, want \"next\"", m)
				}
			}
		})
	}
}

func TestChannelReceive(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   []string // messages delivered
		reply  string   // what the peer must read back
		err    error    // Channel.Err after the peer closes
	}{
		{"whitespace-crlf", []string{" {\"a\":1} \r\n", "\t2\n"}, []string{`{"a":1}`, `2`}, "", nil},
		{"split", []string{`{"split":`, `"yes"}` + "\n" + `{"two":2}` + "\n"}, []string{`{"split":"yes"}`, `{"two":2}`}, "", nil},
		{"split-utf8", []string{"\"\xe2\x82", "\xac\"\n"}, []string{`"€"`}, "", nil},
		{"internal-swallowed", []string{`{"cmd":"NODE_CUSTOM","payload":1}` + "\n" + `{"after":1}` + "\n"}, []string{`{"after":1}`}, "", nil},
		{"handle-nacked", []string{`{"cmd":"NODE_HANDLE","type":"net.Server","msg":{"k":"server"}}` + "\n" + `{"after":"handle"}` + "\n"},
			[]string{`{"after":"handle"}`}, `{"cmd":"NODE_HANDLE_NACK"}` + "\n", nil},
		{"ack-not-answered", []string{`{"cmd":"NODE_HANDLE_ACK"}` + "\n" + `1` + "\n"}, []string{`1`}, "", nil},
		{"empty-line", []string{"1\n\n2\n"}, []string{`1`}, "", childproc.ErrProtocol},
		{"not-json", []string{"1\n{oops}\n2\n"}, []string{`1`}, "", childproc.ErrProtocol},
		{"too-long", []string{"1\n\"" + strings.Repeat("x", 100) + "\"\n"}, []string{`1`}, "", childproc.ErrMessageTooLarge},
		{"too-long-unterminated", []string{"1\n" + strings.Repeat("x", 100)}, []string{`1`}, "", childproc.ErrMessageTooLarge},
		{"truncated-tail", []string{"1\n{\"b\""}, []string{`1`}, "", io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch, peer := rawPeer(t, 64)
			for _, w := range tt.writes {
				if _, err := io.WriteString(peer, w); err != nil {
					t.Fatal(err)
				}
			}
			if tt.reply != "" {
				buf := make([]byte, len(tt.reply))
				if _, err := io.ReadFull(peer, buf); err != nil || string(buf) != tt.reply {
					t.Errorf("peer read %q, %v; want %q", buf, err, tt.reply)
				}
			}
			peer.(*net.UnixConn).CloseWrite()
			var got []string
			for m := range ch.Messages() {
				got = append(got, string(m))
			}
			<-ch.Disconnected()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if err := ch.Err(); tt.err == nil && err != nil || !errors.Is(err, tt.err) {
				t.Errorf("Err() = %v, want %v", err, tt.err)
			}
			if tt.err == childproc.ErrMessageTooLarge && !errors.Is(ch.Err(), childproc.ErrProtocol) {
				t.Errorf("Err() = %v, want it to match ErrProtocol too", ch.Err())
			}
			if tt.reply == "" { // nothing may be written back unasked (an unsolicited ACK/NACK crashes Node)
				if b, _ := io.ReadAll(peer); len(b) > 0 {
					t.Errorf("peer read %q, want nothing", b)
				}
			}
		})
	}
}

// TestChannelDisconnect checks Node's disconnect semantics on both ends.
func TestChannelDisconnect(t *testing.T) {
	a, b := channelPair(t, 0)
	if err := a.Send(t.Context(), "last"); err != nil {
		t.Fatal(err)
	}
	if err := a.Disconnect(); err != nil || a.Connected() {
		t.Fatalf("Disconnect = %v, Connected = %v; want nil, false", err, a.Connected())
	}
	<-a.Disconnected()
	if err := a.Send(t.Context(), "after"); !errors.Is(err, childproc.ErrDisconnected) {
		t.Errorf("Send after Disconnect = %v, want ErrDisconnected (Node: ERR_IPC_CHANNEL_CLOSED)", err)
	}
	if err := a.Disconnect(); !errors.Is(err, childproc.ErrDisconnected) {
		t.Errorf("second Disconnect = %v, want ErrDisconnected (Node: ERR_IPC_DISCONNECTED)", err)
	}
	// The peer gets what was written before the disconnect, then sees it.
	if m := <-b.Messages(); string(m) != `"last"` {
		t.Errorf("peer got %s, want \"last\"", m)
	}
	<-b.Disconnected()
	if _, ok := <-b.Messages(); ok || b.Connected() || b.Err() != nil {
		t.Errorf("peer: Messages open %v, Connected %v, Err %v; want closed, false, nil", ok, b.Connected(), b.Err())
	}
	if err := b.Send(t.Context(), "x"); !errors.Is(err, childproc.ErrDisconnected) {
		t.Errorf("peer Send = %v, want ErrDisconnected", err)
	}
	if err := b.Disconnect(); !errors.Is(err, childproc.ErrDisconnected) {
		t.Errorf("peer Disconnect = %v, want ErrDisconnected", err)
	}
}

// TestChannelUnreadMessages: a consumer that never reads stalls the
// reader (backpressure), and Disconnect still releases it.
func TestChannelUnreadMessages(t *testing.T) {
	ch, peer := rawPeer(t, 0)
	go func() {
		w := bufio.NewWriter(peer)
		for range 1000 {
			w.WriteString("{\"n\":1}\n")
		}
		w.Flush() // blocks once the socket is full; ends when the channel closes
	}()
	<-ch.Messages() // at least one arrived
	if err := ch.Disconnect(); err != nil {
		t.Fatal(err)
	}
}

func TestChannelSendContext(t *testing.T) {
	t.Run("cancelled-before-any-byte", func(t *testing.T) {
		a, peer := net.Pipe() // synchronous: a write blocks until the peer reads
		defer peer.Close()
		ch := childproc.NewChannel(a, 0)
		defer ch.Disconnect()
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { errc <- ch.Send(ctx, "blocked") }()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Send = %v, want context.Canceled", err)
		}
		if !ch.Connected() {
			t.Fatal("channel closed, want it usable: nothing was written")
		}
		go func() { errc <- ch.Send(t.Context(), "next") }()
		line, err := bufio.NewReader(peer).ReadString('\n')
		if err != nil || line != "\"next\"\n" {
			t.Errorf("peer read %q, %v; want \"next\"", line, err)
		}
		if err := <-errc; err != nil {
			t.Error(err)
		}
	})
	t.Run("cancelled-mid-line", func(t *testing.T) {
		a, peer := net.Pipe()
		defer peer.Close()
		ch := childproc.NewChannel(a, 0)
		defer ch.Disconnect()
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error, 1)
		go func() { errc <- ch.Send(ctx, strings.Repeat("x", 100)) }()
		if _, err := io.ReadFull(peer, make([]byte, 10)); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("Send = %v, want context.Canceled", err)
		}
		<-ch.Disconnected() // a cut line cannot be framed any more: the channel closes
		if ch.Err() == nil {
			t.Error("Err() = nil, want the cut write")
		}
	})
}

func TestLineReader(t *testing.T) {
	input := "a\n\nlong " + strings.Repeat("y", 5000) + "\r\nexactly10!\nlast"
	wantLines := []string{"a", "", "long " + strings.Repeat("y", 5000) + "\r", "exactly10!"}
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one-byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data-err": iotest.DataErrReader,
	}
	for name, wrap := range readers {
		t.Run(name, func(t *testing.T) {
			lr := childproc.NewLineReader(wrap(strings.NewReader(input)), 6000)
			var got []string
			var err error
			for {
				var line []byte
				if line, err = lr.ReadLine(); err != nil {
					break
				}
				got = append(got, string(line))
			}
			if !reflect.DeepEqual(got, wantLines) || !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("got %d lines, %v; want %d lines and ErrUnexpectedEOF for the tail", len(got), err, len(wantLines))
			}
		})
	}
	t.Run("limit", func(t *testing.T) {
		lr := childproc.NewLineReader(strings.NewReader("0123456789\n01234567890\n"), 10)
		if line, err := lr.ReadLine(); err != nil || string(line) != "0123456789" {
			t.Fatalf("line of exactly max: %q, %v", line, err)
		}
		if _, err := lr.ReadLine(); !errors.Is(err, childproc.ErrMessageTooLarge) {
			t.Fatalf("line of max+1: %v, want ErrMessageTooLarge", err)
		}
		if _, err := lr.ReadLine(); !errors.Is(err, childproc.ErrMessageTooLarge) {
			t.Fatalf("after the error: %v, want the same error again", err)
		}
	})
}
