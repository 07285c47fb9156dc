package transport_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/procxy/procxy/transport"
)

// childEnv switches the test binary into a helper child process; its value
// names the helper to run.
const childEnv = "TRANSPORT_TEST_CHILD"

func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		os.Exit(runChild(name))
	}
	goleak.VerifyTestMain(m)
}

// runChild runs a helper child process and returns its exit code.
func runChild(name string) int {
	var err error
	switch name {
	case "echo":
		err = echoChild()
	default:
		err = fmt.Errorf("unknown helper %q", name)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

// echoChild wraps its inherited fd 3 and echoes each line back with an
// "echo: " prefix until EOF.
func echoChild() error {
	f := os.NewFile(3, "inherited")
	c, err := transport.FileConn(f)
	f.Close()
	if err != nil {
		return err
	}
	defer c.Close()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		if _, err := fmt.Fprintf(c, "echo: %s\n", sc.Text()); err != nil {
			return err
		}
	}
	return sc.Err()
}

// shortTempDir returns a fresh directory whose path is short enough for Unix
// sockets: t.TempDir's path includes the test name and can get long.
func shortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tp")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Clean(dir)
}

// privateEnv points SocketDir at a fresh XDG_RUNTIME_DIR for this test and
// returns the socket directory SocketDir should pick.
func privateEnv(t *testing.T) string {
	t.Helper()
	xdg := shortTempDir(t)
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	return filepath.Join(xdg, "procxy")
}

// echoOnce accepts one connection from ln, echoes until EOF and reports the
// outcome on the returned channel.
func echoOnce(ln net.Listener) <-chan error {
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, c)
		done <- err
	}()
	return done
}

// roundTrip writes msg to c, half-closes it, and checks that the echo matches.
func roundTrip(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if _, err := io.WriteString(c, msg); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := c.(interface{ CloseWrite() error }).CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != msg {
		t.Fatalf("echo = %q, %v; want %q", got, err, msg)
	}
}
