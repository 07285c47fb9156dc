package procxy_test

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/rpc"
)

// startListening starts this test binary by hand, as a developer starts a
// child from an IDE, serving on a socket (PROCXY_LISTEN), and returns it
// once it listens. The test ends it.
func startListening(t *testing.T) (*exec.Cmd, string) {
	t.Helper()
	path := filepath.Join(shortDir(t), "c.sock")
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), procxy.EnvListen+"="+path)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	listening := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		seen := false
		for sc.Scan() {
			if !seen && strings.Contains(sc.Text(), "serving parents that attach") {
				seen = true
				listening <- true
			}
		}
		if !seen {
			listening <- false
		}
		exited <- cmd.Wait()
	}()
	if !<-listening {
		t.Fatalf("the child exited without listening: %v", <-exited)
	}
	return cmd, path
}

// shortDir is a temporary directory whose socket paths fit sockaddr_un.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "px")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestAttach uses a child started by hand instead of spawning one; Close
// and Kill leave that process running for the next parent.
func TestAttach(t *testing.T) {
	cmd, path := startListening(t)
	for i, stop := range []func(*procxy.Proxy[Calculator]) error{(*procxy.Proxy[Calculator]).Close, (*procxy.Proxy[Calculator]).Kill} {
		p, err := procxy.New[Calculator](t.Context(), procxy.Attach(path), procxy.Config(CalcConfig{Base: 10 * i}), procxy.Logger(childLog(t)))
		if err != nil {
			t.Fatalf("New with Attach: %v", err)
		}
		if got, err := procxy.Call[int](t.Context(), p, "PID"); err != nil || got != cmd.Process.Pid {
			t.Fatalf("PID() = %d, %v; want the attached child's %d", got, err, cmd.Process.Pid)
		}
		if got, err := procxy.Call[int](t.Context(), p, "Add", 1, 2); err != nil || got != 10*i+3 {
			t.Fatalf("Add(1, 2) = %d, %v; want %d (each attach constructs its own object)", got, err, 10*i+3)
		}
		if p.Process() == nil || p.Process().Pid != cmd.Process.Pid {
			t.Errorf("Process() = %v, want pid %d", p.Process(), cmd.Process.Pid)
		}
		if err := stop(p); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			t.Fatalf("the attached child is gone after the proxy ended: %v", err)
		}
	}
}

// TestAttachChildExits: an attached child that exits ends the proxy with
// an error wrapping ErrClosed; attaching where nothing listens says so.
func TestAttachChildExits(t *testing.T) {
	cmd, path := startListening(t)
	p, err := procxy.New[Calculator](t.Context(), procxy.Attach(path), procxy.Logger(childLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cmd.Process.Signal(syscall.SIGTERM)
	<-p.Done()
	if err := p.Err(); !errors.Is(err, rpc.ErrClosed) {
		t.Errorf("Err() after the attached child exited = %v, want rpc.ErrClosed", err)
	}
	_, err = procxy.Call[int](t.Context(), p, "Add", 1, 2)
	if !errors.Is(err, rpc.ErrClosed) {
		t.Errorf("Call after the attached child exited = %v, want rpc.ErrClosed", err)
	}

	_, err = procxy.New[Calculator](t.Context(), procxy.Attach(filepath.Join(shortDir(t), "none.sock")))
	if err == nil || !strings.Contains(err.Error(), procxy.EnvListen) {
		t.Errorf("New attaching where nothing listens = %v, want an error that names %s", err, procxy.EnvListen)
	}
}

// TestAttachFromEnv: PROCXY_ATTACH=key=path makes New attach without the
// Attach option, for that key only.
func TestAttachFromEnv(t *testing.T) {
	cmd, path := startListening(t)
	t.Setenv(procxy.EnvAttach, "other.Type=/nowhere.sock,github.com/procxy/procxy_test.Calculator="+path)
	p, err := procxy.New[Calculator](t.Context(), procxy.Logger(childLog(t)))
	if err != nil {
		t.Fatalf("New with %s set: %v", procxy.EnvAttach, err)
	}
	defer p.Close()
	if got, err := procxy.Call[int](t.Context(), p, "PID"); err != nil || got != cmd.Process.Pid {
		t.Fatalf("PID() = %d, %v; want the attached child's %d", got, err, cmd.Process.Pid)
	}
}
