//go:build linux

package childproc_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/procxy/procxy/childproc"
)

func TestKill(t *testing.T) {
	c := spawn(t, "cat", nil, childproc.Options{Stdout: childproc.Ignore()})
	if c.ExitCode() != -1 {
		t.Errorf("ExitCode() while running = %d, want -1", c.ExitCode())
	}
	if err := c.Kill(0); err != nil || !c.Killed() {
		t.Fatalf("Kill(0) = %v, Killed() = %v; want nil, true (Node: kill(0) counts)", err, c.Killed())
	}
	if err := c.KillGroup(syscall.SIGKILL); !errors.Is(err, childproc.ErrNoProcessGroup) {
		t.Errorf("KillGroup without a group = %v, want ErrNoProcessGroup", err)
	}
	if err := c.Kill(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-c.Exited()
	if err := c.Kill(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Kill after exit = %v, want os.ErrProcessDone (Node: false)", err)
	}
	var ee *childproc.ExitError
	if err := c.Wait(t.Context()); !errors.As(err, &ee) || ee.Signal != syscall.SIGTERM || !ee.Killed || ee.Cause != nil {
		t.Errorf("Wait = %v, want signal SIGTERM, killed", err)
	}
}

func TestSpawnTimeoutAndContext(t *testing.T) {
	tests := []struct {
		name   string
		opts   childproc.Options
		cancel bool
		signal syscall.Signal
		cause  error
	}{
		{"timeout-SIGTERM", childproc.Options{Timeout: 20e6}, false, syscall.SIGTERM, childproc.ErrTimeout},
		{"timeout-SIGKILL", childproc.Options{Timeout: 20e6, KillSignal: syscall.SIGKILL}, false, syscall.SIGKILL, childproc.ErrTimeout},
		{"context", childproc.Options{}, true, syscall.SIGTERM, context.Canceled},
		{"context-SIGINT", childproc.Options{KillSignal: syscall.SIGINT}, true, syscall.SIGINT, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			tt.opts.Stdout = childproc.Ignore()
			c, err := childproc.Spawn(ctx, "cat", nil, tt.opts) // cat waits for stdin, which stays open
			if err != nil {
				t.Fatal(err)
			}
			cleanupChild(t, c)
			if tt.cancel {
				cancel()
			}
			err = c.Wait(t.Context())
			var ee *childproc.ExitError
			if !errors.As(err, &ee) || ee.Signal != tt.signal || ee.Code != -1 || !ee.Killed || !errors.Is(err, tt.cause) {
				t.Errorf("Wait = %#v, want signal %v, killed, cause %v", err, tt.signal, tt.cause)
			}
		})
	}
	t.Run("already-cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if c, err := childproc.Spawn(ctx, "cat", nil, childproc.Options{}); c != nil || !errors.Is(err, context.Canceled) {
			t.Errorf("Spawn = %v, %v; want nil, context.Canceled", c, err)
		}
	})
}

func TestStopGrace(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The child ignores SIGTERM (exec keeps an ignored disposition).
	c, err := childproc.Spawn(ctx, "sh", []string{"-c", `trap "" TERM; echo ready; exec sleep 1000`},
		childproc.Options{StopGrace: 20e6})
	if err != nil {
		t.Fatal(err)
	}
	cleanupChild(t, c)
	line, _ := bufio.NewReader(c.Stdout()).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("got %q, want ready", line)
	}
	cancel()
	io.Copy(io.Discard, c.Stdout())
	var ee *childproc.ExitError
	if err := c.Wait(t.Context()); !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL || !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want SIGKILL after the ignored SIGTERM, cause context.Canceled", err)
	}
}

// readPID reads one decimal pid line.
func readPID(t *testing.T, r *bufio.Reader) int {
	t.Helper()
	line, err := r.ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		t.Fatalf("read pid: %q, %v, %v", line, err, perr)
	}
	return pid
}

// TestKillGroup shows Node's behaviour (Kill reaches only the direct child,
// a shell's background job survives) and KillGroup, which kills the job.
func TestKillGroup(t *testing.T) {
	hold, holdW := pipe(t) // the grandchild holds holdW: EOF on hold means it died
	c := spawn(t, "sh", []string{"-c", "sleep 1000 & echo $!; wait"},
		childproc.Options{ProcessGroup: true, ExtraFiles: []*os.File{holdW}, Stdin: childproc.Ignore()})
	holdW.Close()
	out := bufio.NewReader(c.Stdout())
	grandchild := readPID(t, out)
	if err := c.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.Exited()
	if !alive(grandchild) {
		t.Fatalf("grandchild %d died with its parent; want it orphaned, as in Node", grandchild)
	}
	if err := c.KillGroup(syscall.SIGKILL); err != nil {
		t.Fatalf("KillGroup after the leader exited = %v, want nil (the group still has a member)", err)
	}
	// EOF on hold: the grandchild's copy of holdW is closed, which sleep
	// does only by exiting.
	io.Copy(io.Discard, hold)
	io.Copy(io.Discard, out)
	<-c.Done()
}

func TestDoneWaitsForStdio(t *testing.T) {
	c := spawn(t, "sh", []string{"-c", "sleep 1000 & echo started"}, childproc.Options{ProcessGroup: true, Stdin: childproc.Ignore()})
	out := bufio.NewReader(c.Stdout())
	if line, _ := out.ReadString('\n'); line != "started\n" {
		t.Fatalf("got %q", line)
	}
	<-c.Exited() // 'exit': the shell is gone, but its job still holds stdout
	select {
	case <-c.Done():
		t.Fatal("Done before stdout reached EOF, want Node's 'close' semantics")
	default:
	}
	c.KillGroup(syscall.SIGKILL)
	io.Copy(io.Discard, out)
	<-c.Done()
	if c.ExitCode() != 0 || c.Killed() != true {
		t.Errorf("ExitCode, Killed = %d, %v; want 0, true", c.ExitCode(), c.Killed())
	}
}
