//go:build unix

package transport_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/procxy/procxy/transport"
)

// connPair returns both ends of a Socketpair as conns, closed at cleanup.
func connPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	fa, fb, err := transport.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	a, errA := transport.FileConn(fa)
	b, errB := transport.FileConn(fb)
	fa.Close() // the conns hold their own descriptors
	fb.Close()
	if errA != nil || errB != nil {
		t.Fatalf("FileConn: %v, %v", errA, errB)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func TestSocketpair(t *testing.T) {
	a, b := connPair(t)
	if _, ok := a.(*net.UnixConn); !ok {
		t.Fatalf("FileConn returned %T, want *net.UnixConn", a)
	}
	for _, dir := range []struct {
		name     string
		from, to net.Conn
	}{{"a-to-b", a, b}, {"b-to-a", b, a}} {
		t.Run(dir.name, func(t *testing.T) {
			msg := []byte("ping " + dir.name)
			if _, err := dir.from.Write(msg); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(dir.to, got); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("read %q, %v; want %q", got, err, msg)
			}
		})
	}
	a.Close()
	if n, err := b.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("Read after peer Close = %d, %v; want 0, io.EOF", n, err)
	}
}

func TestFileConnNotSocket(t *testing.T) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if c, err := transport.FileConn(f); err == nil {
		c.Close()
		t.Fatal("FileConn(/dev/null) succeeded; want an error")
	}
}

// TestSocketpairChild hands one end to a real child process as fd 3. The
// child echoes lines until EOF; it only sees EOF when the parent closes its
// end if that end was not leaked into the child, so this also checks that
// Socketpair's descriptors are close-on-exec.
func TestSocketpairChild(t *testing.T) {
	parent, child, err := transport.Socketpair()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // a hung child is killed, not leaked
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=echo", "GORACE=atexit_sleep_ms=0")
	cmd.ExtraFiles = []*os.File{child}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Start()
	child.Close() // the child has its own copy now
	if err != nil {
		parent.Close()
		t.Fatal(err)
	}
	conn, err := transport.FileConn(parent)
	parent.Close()
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal(err)
	}

	r := bufio.NewReader(conn)
	for i := range 3 {
		line := fmt.Sprintf("line %d", i)
		if _, err := fmt.Fprintln(conn, line); err != nil {
			t.Errorf("write: %v", err)
			break
		}
		got, err := r.ReadString('\n')
		if want := "echo: " + line + "\n"; err != nil || got != want {
			t.Errorf("child answered %q, %v; want %q", got, err, want)
			break
		}
	}
	conn.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v (ctx %v); stderr:\n%s", err, ctx.Err(), stderr.Bytes())
	}
}
