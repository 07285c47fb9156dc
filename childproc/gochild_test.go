//go:build linux

package childproc_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"reflect"
	"slices"
	"syscall"
	"testing"

	"github.com/procxy/procxy/childproc"
)

// spawnGoChild starts the test binary as a Go child with an IPC channel,
// talking through childproc.Parent (helperEcho), and reads its hello.
func spawnGoChild(t *testing.T, o childproc.Options) (*childproc.Child, *childproc.Channel) {
	t.Helper()
	o.IPC = true
	c := spawnHelper(t, "echo", nil, o)
	ch := c.Channel()
	var hello struct {
		Hello string `json:"hello"`
		PID   int    `json:"pid"`
	}
	if err := json.Unmarshal(<-ch.Messages(), &hello); err != nil || hello.Hello != "from go child" || hello.PID != c.PID() {
		t.Fatalf("hello = %+v, %v", hello, err)
	}
	return c, ch
}

func TestGoChildEcho(t *testing.T) {
	c, ch := spawnGoChild(t, childproc.Options{Stdin: childproc.Ignore()})
	ctx := t.Context()
	const n = 2000
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if err := ch.Send(ctx, gen(i)); err != nil {
				errc <- err
				return
			}
		}
		errc <- ch.Send(ctx, map[string]string{"op": "bye"})
	}()
	for i := range n {
		var got any
		if err := json.Unmarshal(<-ch.Messages(), &got); err != nil {
			t.Fatal(err)
		}
		if want := generic(t, gen(i)); !reflect.DeepEqual(got, want) {
			t.Fatalf("echo %d: got %.100v, want %.100v", i, got, want)
		}
	}
	if m := <-ch.Messages(); string(m) != `{"bye":true}` {
		t.Fatalf("got %s, want bye", m)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// The child disconnected and exited: the channel closes, Done comes.
	if _, ok := <-ch.Messages(); ok {
		t.Error("got a message after bye")
	}
	if err := c.Wait(ctx); err != nil || ch.Err() != nil {
		t.Errorf("Wait = %v, Err = %v; want nil, nil", err, ch.Err())
	}
}

func TestGoChildDisconnect(t *testing.T) {
	t.Run("parent-disconnects", func(t *testing.T) {
		c, ch := spawnGoChild(t, childproc.Options{Stdin: childproc.Ignore()})
		if err := ch.Disconnect(); err != nil {
			t.Fatal(err)
		}
		var ee *childproc.ExitError
		if err := c.Wait(t.Context()); !errors.As(err, &ee) || ee.Code != 7 {
			t.Errorf("Wait = %v, want exit status 7 (the child saw the disconnect)", err)
		}
	})
	t.Run("child-disconnects", func(t *testing.T) {
		c, ch := spawnGoChild(t, childproc.Options{})
		if err := ch.Send(t.Context(), map[string]string{"op": "disconnect"}); err != nil {
			t.Fatal(err)
		}
		<-ch.Disconnected()
		select {
		case <-c.Exited():
			t.Fatal("child exited; want it alive after its own disconnect")
		default:
		}
		c.Stdin().Close()
		if err := c.Wait(t.Context()); err != nil {
			t.Errorf("Wait = %v, want nil", err)
		}
	})
}

// TestGoChildHygiene: after Parent, the Go child has neither the channel
// variables nor the inherited fd, and its own child sees neither (§8.6, §8.7).
func TestGoChildHygiene(t *testing.T) {
	c, ch := spawnGoChild(t, childproc.Options{Stdin: childproc.Ignore(),
		Env: []string{"NODE_UNIQUE_ID=7"}}) // dropped: it would make a Node child a cluster worker
	if err := ch.Send(t.Context(), map[string]string{"op": "hygiene"}); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Self, Grandchild fdReport
		Err              string
	}
	if err := json.Unmarshal(<-ch.Messages(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Err != "<nil>" || rep.Self.ChannelFD != "" || rep.Self.ChannelMode != "" || slices.Contains(rep.Self.Sockets, 3) ||
		rep.Grandchild.ChannelFD != "" || len(rep.Grandchild.Sockets) != 0 {
		t.Errorf("report %+v: want no channel variables, fd 3 closed, and no socket in the grandchild", rep)
	}
	ch.Send(t.Context(), map[string]string{"op": "bye"})
	<-ch.Messages()
	if err := c.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestGoChildInternalRefused(t *testing.T) {
	_, ch := spawnGoChild(t, childproc.Options{Stdin: childproc.Ignore()})
	if err := ch.Send(t.Context(), map[string]string{"op": "internal"}); err != nil {
		t.Fatal(err)
	}
	if m := <-ch.Messages(); string(m) != `{"refused":true}` {
		t.Errorf("got %s, want {\"refused\":true}", m)
	}
}

// rawFD returns a new fd number for f's file that no *os.File owns, as an
// inherited fd is.
func rawFD(t *testing.T, f interface {
	SyscallConn() (syscall.RawConn, error)
}) int {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	rc.Control(func(s uintptr) { fd, err = syscall.Dup(int(s)) })
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestOpenParent checks Parent's handling of NODE_CHANNEL_FD and the mode.
func TestOpenParent(t *testing.T) {
	tests := []struct {
		name, fd, mode string
		wantErr        error // errAny: some error
		wantChannel    bool
	}{
		{"unset", "-", "", nil, false},
		{"empty", "", "", nil, false},
		{"garbage", "abc", "", childproc.ErrInvalidArgument, false},
		{"negative", "-1", "", childproc.ErrInvalidArgument, false},
		{"json", "SOCKET", "json", nil, true},
		{"default-mode", "SOCKET", "", nil, true},
		{"advanced", "SOCKET", "advanced", childproc.ErrUnsupportedSerialization, false},
		{"not-a-socket", "PIPE", "", errAny, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fd := tt.fd
			var peer net.Conn
			switch fd {
			case "SOCKET":
				a, b := connPair(t)
				fd, peer = itoa(rawFD(t, a.(*net.UnixConn))), b
				a.Close()
			case "PIPE":
				r, _ := pipe(t)
				fd = itoa(rawFD(t, r))
			}
			env := map[string]string{"NODE_CHANNEL_SERIALIZATION_MODE": tt.mode}
			if tt.fd != "-" {
				env["NODE_CHANNEL_FD"] = fd
			}
			var unset []string
			ch, err := childproc.OpenParent(func(k string) (string, bool) { v, ok := env[k]; return v, ok },
				func(k string) error { unset = append(unset, k); return nil }, 0)
			if (ch != nil) != tt.wantChannel || (tt.wantErr == nil) != (err == nil) ||
				tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, %v; want a channel %v, error %v", ch, err, tt.wantChannel, tt.wantErr)
			}
			if tt.fd != "-" && tt.fd != "" && len(unset) != 2 {
				t.Errorf("unset %v, want both channel variables removed", unset)
			}
			switch {
			case ch != nil: // the channel talks to the peer
				defer ch.Disconnect()
				io.WriteString(peer, "\"hi\"\n")
				if m := <-ch.Messages(); string(m) != `"hi"` {
					t.Errorf("got %s, want \"hi\"", m)
				}
			case peer != nil: // refused: the fd was closed, the peer sees EOF
				if n, err := peer.Read(make([]byte, 1)); n != 0 || err != io.EOF {
					t.Errorf("peer read %d, %v; want EOF", n, err)
				}
			}
		})
	}
}

var errAny = errors.New("any error")
