//go:build linux

package childproc_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/procxy/procxy/childproc"
)

// helperEnv selects a helper mode when the test binary is re-run as a
// child (see helperMain), like os/exec's helperCommand.
const helperEnv = "CHILDPROC_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode))
	}
	// Orphaned grandchildren are re-parented to this process, so the check
	// below also sees descendants that outlived their parents.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "childproc tests: PR_SET_CHILD_SUBREAPER:", err)
		os.Exit(2)
	}
	goleak.VerifyTestMain(checkedRun{m})
}

// checkedRun runs the tests, then fails the run if any child process (or
// re-parented descendant) is still alive.
type checkedRun struct{ m *testing.M }

func (c checkedRun) Run() int {
	code := c.m.Run()
	// A descendant killed at the end of a test may still be exiting: give
	// each one a bounded wait for its exit event before calling it a leak.
	for _, p := range liveChildren() {
		pid, _ := strconv.Atoi(strings.SplitN(p, ":", 2)[0])
		awaitExit(pid, 5000)
	}
	reapZombies()
	if left := liveChildren(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "childproc tests: %d child processes outlived the tests: %v\n", len(left), left)
		for _, p := range left {
			pid, _ := strconv.Atoi(strings.SplitN(p, ":", 2)[0])
			syscall.Kill(pid, syscall.SIGKILL)
		}
		return 1
	}
	return code
}

// awaitExit waits up to ms milliseconds for pid to exit, using a pidfd
// (readable once the process has exited).
func awaitExit(pid, ms int) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
}

// reapZombies collects exited descendants nobody waits for. It runs after
// every test has finished, so it steals no Child's exit status.
func reapZombies() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}

// liveChildren lists processes whose parent is this process.
func liveChildren() []string {
	self := strconv.Itoa(os.Getpid())
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may contain spaces and parentheses.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 && fields[1] == self {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			out = append(out, e.Name()+":"+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}

// processState returns the state letter of pid from /proc ("Z" for a
// zombie), or "" when the process is gone.
func processState(pid int) string {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	return fields[0]
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	s := processState(pid)
	return s != "" && s != "Z"
}

// requireNode fails the test (it does not skip: CI installs Node.js) when
// node is not on PATH, and returns its path.
func requireNode(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (%v): the Node.js interop tests need Node.js 20; install it or run ./scripts/test", err)
	}
	return p
}

// helperOpts returns Options that run the test binary in helper mode.
func helperOpts(mode string, o childproc.Options) childproc.Options {
	o.Env = append(append(os.Environ(), o.Env...), helperEnv+"="+mode, noRaceExitDelay)
	return o
}

// noRaceExitDelay stops the race detector's 1 s pause at exit in helpers.
const noRaceExitDelay = "GORACE=atexit_sleep_ms=0"

func osArgs0() string { return os.Args[0] }

// spawnHelper starts the test binary in a helper mode and registers a
// cleanup that kills it and waits, so no helper outlives its test.
func spawnHelper(t *testing.T, mode string, args []string, o childproc.Options) *childproc.Child {
	t.Helper()
	c, err := childproc.Spawn(t.Context(), os.Args[0], args, helperOpts(mode, o))
	if err != nil {
		t.Fatal(err)
	}
	cleanupChild(t, c)
	return c
}

// cleanupChild kills c at the end of the test and waits for its exit.
func cleanupChild(t *testing.T, c *childproc.Child) {
	t.Cleanup(func() {
		c.Kill(syscall.SIGKILL)
		if ch := c.Channel(); ch != nil {
			ch.Disconnect()
		}
		for _, p := range []io.Closer{c.Stdout(), c.Stderr()} {
			if p != nil {
				p.Close()
			}
		}
		<-c.Done()
	})
}

// helperMain runs in the re-executed test binary and returns its exit code.
// moreHelpers are helper modes defined by other test files.
var moreHelpers = map[string]func() int{}

func helperMain(mode string) int {
	switch mode {
	case "echo":
		return helperEcho()
	case "fdreport":
		return helperFDReport()
	case "stdin-exit":
		// Exit with the code read from stdin, after printing it.
		b, _ := io.ReadAll(os.Stdin)
		code, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		fmt.Print(code)
		return code
	case "pdeathsig-middle":
		// Start a grandchild that holds fd 3 and dies with us, print its pid, exit.
		c, err := childproc.Spawn(context.Background(), "sleep", []string{"1000"}, childproc.Options{
			Pdeathsig: syscall.SIGKILL, ExtraFiles: []*os.File{os.NewFile(3, "hold")},
			Stdin: childproc.Ignore(), Stdout: childproc.Ignore(),
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Println(c.PID())
		return 0
	case "parent-none":
		ch, err := childproc.Parent()
		fmt.Printf("%v %v", ch == nil, err)
		return 0
	case "spawn-as-root":
		// Runs unprivileged: starting a child as root must fail with EPERM.
		_, err := childproc.Spawn(context.Background(), "/bin/true", nil,
			childproc.Options{Credential: &childproc.Credential{UID: 0, GID: 0}})
		var se *childproc.SpawnError
		if !errors.As(err, &se) {
			fmt.Printf("no SpawnError: %v", err)
			return 1
		}
		fmt.Printf("%s %s %v", se.Code(), se.Error(), errors.Is(err, os.ErrPermission))
		return 0
	}
	if f, ok := moreHelpers[mode]; ok {
		return f()
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// helperEcho is a Go child that talks to its parent over the IPC channel:
// it says hello, echoes every message, and obeys {"op":…} commands. When
// the parent disconnects it exits with status 7, so the parent can see
// that the disconnect was noticed.
func helperEcho() int {
	p, err := childproc.Parent()
	if err != nil || p == nil {
		fmt.Fprintln(os.Stderr, "echo helper: no parent channel:", err)
		return 3
	}
	ctx := context.Background()
	if err := p.Send(ctx, map[string]any{"hello": "from go child", "pid": os.Getpid()}); err != nil {
		fmt.Fprintln(os.Stderr, "echo helper: hello:", err)
		return 4
	}
	for m := range p.Messages() {
		var op struct {
			Op   string `json:"op"`
			Code int    `json:"code"`
		}
		json.Unmarshal(m, &op)
		switch op.Op {
		case "bye":
			p.Send(ctx, map[string]bool{"bye": true})
			p.Disconnect()
			return 0
		case "disconnect":
			// Disconnect but keep running until stdin ends.
			p.Disconnect()
			io.Copy(io.Discard, os.Stdin)
			return 0
		case "exit":
			return op.Code
		case "hygiene":
			p.Send(ctx, hygieneReport())
			continue
		case "internal":
			err := p.Send(ctx, map[string]string{"cmd": "NODE_HANDLE_ACK"})
			p.Send(ctx, map[string]any{"refused": errors.Is(err, childproc.ErrInternalMessage)})
			continue
		}
		if err := p.Send(ctx, m); err != nil {
			fmt.Fprintln(os.Stderr, "echo helper: send:", err)
			return 5
		}
	}
	if p.Err() != nil {
		fmt.Fprintln(os.Stderr, "echo helper:", p.Err())
		return 6
	}
	return 7
}

// fdReport is what the fdreport helper prints: its channel variables and
// the socket fds it holds.
type fdReport struct {
	ChannelFD   string `json:"channelFD"`
	ChannelMode string `json:"channelMode"`
	Sockets     []int  `json:"sockets"`
}

func currentFDReport() fdReport {
	r := fdReport{ChannelFD: os.Getenv("NODE_CHANNEL_FD"), ChannelMode: os.Getenv("NODE_CHANNEL_SERIALIZATION_MODE"), Sockets: []int{}}
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		target, err := os.Readlink("/proc/self/fd/" + e.Name())
		if err == nil && strings.HasPrefix(target, "socket:") {
			fd, _ := strconv.Atoi(e.Name())
			r.Sockets = append(r.Sockets, fd)
		}
	}
	slices.Sort(r.Sockets)
	return r
}

func helperFDReport() int {
	json.NewEncoder(os.Stdout).Encode(currentFDReport())
	return 0
}

// hygieneReport describes this child (after Parent) and a grandchild it
// starts, to show that neither the channel's variables nor its fd leak.
func hygieneReport() map[string]any {
	out, _, err := childproc.ExecFile(context.Background(), os.Args[0], nil,
		childproc.Options{Env: append(os.Environ(), helperEnv+"=fdreport", noRaceExitDelay)})
	var grand fdReport
	if err == nil {
		err = json.Unmarshal(out, &grand)
	}
	return map[string]any{"self": currentFDReport(), "grandchild": grand, "err": fmt.Sprint(err)}
}
