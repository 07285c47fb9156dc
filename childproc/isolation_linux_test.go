package childproc_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/procxy/procxy/childproc"
)

// pidfdThread is PIDFD_THREAD (O_EXCL): a pidfd for one thread, readable
// once that thread has exited (Linux 6.9).
const pidfdThread = unix.O_EXCL

func init() {
	moreHelpers["alloc"] = helperAlloc
	moreHelpers["openfiles"] = helperOpenFiles
	moreHelpers["spin"] = func() int {
		for { // Go ignores SIGXCPU: only the hard limit's SIGKILL ends this
		}
	}
	moreHelpers["pdeathsig-locked-middle"] = helperLockedMiddle
	if os.Getenv(helperEnv) == "pdeathsig-locked-middle" {
		// Keep the main goroutine on the main thread, which Go never ends,
		// so that the goroutine below gets a thread of its own to end.
		runtime.LockOSThread()
	}
}

// helperAlloc allocates 64 MiB blocks it never touches (so they cost
// address space, not memory) until the runtime fails.
func helperAlloc() int {
	var keep [][]byte
	for range 1 << 10 {
		keep = append(keep, make([]byte, 64<<20))
	}
	fmt.Println("allocated", len(keep)*64, "MiB")
	return 0
}

// helperOpenFiles opens /dev/null until it fails and prints how many it
// opened and the error.
func helperOpenFiles() int {
	var files []*os.File
	for range 1 << 16 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			fmt.Println(len(files), errors.Is(err, syscall.EMFILE))
			return 0
		}
		files = append(files, f)
	}
	fmt.Println(len(files), "no error")
	return 0
}

// helperLockedMiddle starts `cat` with Pdeathsig from a goroutine locked
// to its thread, lets that thread end, checks that cat still echoes, then
// prints cat's pid and exits: cat (holding fd 3) must die with it.
func helperLockedMiddle() int {
	type started struct {
		c      *childproc.Child
		thread int // a pidfd of the goroutine's thread
		err    error
	}
	res := make(chan started)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		tfd, err := unix.PidfdOpen(unix.Gettid(), pidfdThread)
		if err != nil {
			res <- started{err: fmt.Errorf("pidfd_open(PIDFD_THREAD) needs Linux 6.9: %w", err)}
			return
		}
		c, err := childproc.Spawn(context.Background(), "cat", nil, childproc.Options{
			Pdeathsig: syscall.SIGKILL, ExtraFiles: []*os.File{os.NewFile(3, "hold")}, Stderr: childproc.Ignore(),
		})
		res <- started{c, tfd, err}
	}()
	r := <-res
	if r.err != nil {
		fmt.Fprintln(os.Stderr, r.err)
		return 1
	}
	// The kernel sends the parent-death signals of a thread's children
	// before its pidfd becomes readable.
	if _, err := unix.Poll([]unix.PollFd{{Fd: int32(r.thread), Events: unix.POLLIN}}, -1); err != nil {
		fmt.Fprintln(os.Stderr, "poll thread pidfd:", err)
		return 1
	}
	io.WriteString(r.c.Stdin(), "still here\n")
	line, err := bufio.NewReader(r.c.Stdout()).ReadString('\n')
	if err != nil {
		fmt.Fprintln(os.Stderr, "cat died with the thread that started it:", err)
		return 1
	}
	fmt.Print(strings.TrimSpace(line), " ", r.c.PID())
	return 0
}

// TestPdeathsigLockedThread: a child started with Pdeathsig from a
// goroutine locked to an OS thread survives that thread's end, and still
// dies with its parent process.
func TestPdeathsigLockedThread(t *testing.T) {
	hold, holdW := pipe(t)
	middle := spawn(t, os.Args[0], nil, helperOpts("pdeathsig-locked-middle", childproc.Options{ExtraFiles: []*os.File{holdW}}))
	holdW.Close()
	var stderr strings.Builder
	errDone := make(chan struct{})
	go func() { io.Copy(&stderr, middle.Stderr()); close(errDone) }()
	out, err := io.ReadAll(middle.Stdout())
	<-errDone
	if err := errors.Join(err, middle.Wait(t.Context())); err != nil || !strings.HasPrefix(string(out), "still here ") {
		t.Fatalf("middle process: %q, %v (stderr %q); want cat alive after its thread ended", out, err, stderr.String())
	}
	// EOF: every holder of holdW, cat included, has exited.
	io.Copy(io.Discard, hold)
}

func procStatus(t *testing.T, opts childproc.Options) string {
	t.Helper()
	got, err := output(t, spawn(t, "cat", []string{"/proc/self/status"}, opts))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func statusField(status, name string) string {
	m := regexp.MustCompile(`(?m)^` + name + `:\s*(.*)$`).FindStringSubmatch(status)
	if m == nil {
		return ""
	}
	return strings.Join(strings.Fields(m[1]), " ")
}

func TestNoNewPrivs(t *testing.T) {
	tests := []struct {
		name     string
		opts     childproc.Options
		nnp, uid string
	}{
		{"default", childproc.Options{}, "0", "0 0 0 0"},
		{"no-new-privs", childproc.Options{NoNewPrivs: true}, "1", "0 0 0 0"},
		{"with-pdeathsig", childproc.Options{NoNewPrivs: true, Pdeathsig: syscall.SIGKILL}, "1", "0 0 0 0"},
		{"as-nobody", childproc.Options{NoNewPrivs: true, Credential: &childproc.Credential{UID: 65534, GID: 65534}}, "1", "65534 65534 65534 65534"},
	}
	if os.Getuid() != 0 {
		tests = tests[:3]
		for i := range tests {
			tests[i].uid = strings.Repeat(fmt.Sprint(os.Getuid())+" ", 4)[:len(tests[i].uid)]
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := procStatus(t, tt.opts)
			if got := statusField(st, "NoNewPrivs"); got != tt.nnp {
				t.Errorf("NoNewPrivs = %q, want %q", got, tt.nnp)
			}
			if got := statusField(st, "Uid"); got != tt.uid {
				t.Errorf("Uid = %q, want %q", got, tt.uid)
			}
			if tt.opts.Credential != nil {
				if got, want := statusField(st, "Gid"), "65534 65534 65534 65534"; got != want {
					t.Errorf("Gid = %q, want %q", got, want)
				}
			}
		})
	}
	// This process never runs Go code on a thread with no_new_privs.
	if got := statusField(procStatusSelf(t), "NoNewPrivs"); got != "0" {
		t.Errorf("test process NoNewPrivs = %q, want 0", got)
	}
}

// TestLimitsOtherUser: limits apply to a child that runs as another user,
// without CAP_SYS_RESOURCE (this container, like Docker's default, has
// none): the spawner thread takes the child's real ids for the prlimit.
// The spawner thread's own ids are restored, which the next spawn, as
// root, shows.
func TestLimitsOtherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to start a child as another user") // TestCredential covers the unprivileged EPERM
	}
	capEff, _ := strconv.ParseUint(statusField(procStatusSelf(t), "CapEff"), 16, 64)
	t.Logf("CAP_SYS_RESOURCE: %v", capEff&(1<<unix.CAP_SYS_RESOURCE) != 0)
	for _, nnp := range []bool{false, true} {
		// A child that keeps the spawner thread alive through the test.
		holder := spawn(t, "sleep", []string{"60"}, childproc.Options{NoNewPrivs: nnp, Limits: childproc.Limits{OpenFiles: 100}})
		opts := childproc.Options{NoNewPrivs: nnp, Credential: &childproc.Credential{UID: 65534, GID: 65534}, Limits: childproc.Limits{OpenFiles: 100}}
		st := procStatus(t, opts)
		if got, want := statusField(st, "Uid")+"/"+statusField(st, "Gid"), "65534 65534 65534 65534/65534 65534 65534 65534"; got != want {
			t.Errorf("NoNewPrivs %v: Uid/Gid = %q, want %q", nnp, got, want)
		}
		limits, err := output(t, spawn(t, "cat", []string{"/proc/self/limits"}, opts))
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`Max open files\s+100\s+100\s+files`).MatchString(limits) {
			t.Errorf("NoNewPrivs %v: limits of the child:\n%s", nnp, limits)
		}
		// The same spawner thread starts a child as root again.
		opts.Credential = nil
		if got := statusField(procStatus(t, opts), "Uid"); got != "0 0 0 0" {
			t.Errorf("NoNewPrivs %v: a later child without Credential has Uid %q, want root's", nnp, got)
		}
		holder.Kill(syscall.SIGKILL)
		holder.Wait(t.Context())
	}
}

func procStatusSelf(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLimitsApplied(t *testing.T) {
	limits := childproc.Limits{AddressSpace: 4 << 30, Data: 3 << 30, CPUTime: 1500 * time.Millisecond, OpenFiles: 64}
	got, err := output(t, spawn(t, "cat", []string{"/proc/self/limits"}, childproc.Options{Limits: limits}))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`Max cpu time\s+2\s+3\s+seconds`, // rounded up; hard limit one second above
		`Max data size\s+3221225472\s+3221225472\s+bytes`,
		`Max open files\s+64\s+64\s+files`,
		`Max address space\s+4294967296\s+4294967296\s+bytes`,
	} {
		if !regexp.MustCompile(want).MatchString(got) {
			t.Errorf("/proc/self/limits has no line matching %q:\n%s", want, got)
		}
	}
}

func TestLimitsInvalid(t *testing.T) {
	_, err := childproc.Spawn(t.Context(), "true", nil, childproc.Options{Limits: childproc.Limits{OpenFiles: -1}})
	if !errors.Is(err, childproc.ErrInvalidArgument) {
		t.Errorf("negative limit: got %v, want ErrInvalidArgument", err)
	}
}

func TestLimitCPU(t *testing.T) {
	limits := childproc.Limits{CPUTime: time.Second}
	c := spawn(t, "sh", []string{"-c", "while :; do :; done"}, childproc.Options{Limits: limits})
	err := c.Wait(t.Context())
	var ee *childproc.ExitError
	if !errors.As(err, &ee) || ee.Signal != syscall.SIGXCPU {
		t.Fatalf("got %v, want an *ExitError with SIGXCPU", err)
	}
	if got, want := childproc.LimitCause(limits, c.ProcessState(), ""), "CPU time limit (1s)"; got != want {
		t.Errorf("LimitCause = %q, want %q", got, want)
	}
}

// TestLimitCPUGo: a Go child ignores SIGXCPU and dies by SIGKILL at the
// hard limit, one second later; LimitCause still names the CPU limit.
func TestLimitCPUGo(t *testing.T) {
	limits := childproc.Limits{CPUTime: time.Second}
	c := spawnHelper(t, "spin", nil, childproc.Options{Limits: limits, Stdout: childproc.Ignore(), Stderr: childproc.Ignore()})
	err := c.Wait(t.Context())
	var ee *childproc.ExitError
	if !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
		t.Fatalf("got %v, want an *ExitError with SIGKILL", err)
	}
	if got, want := childproc.LimitCause(limits, c.ProcessState(), ""), "CPU time limit (1s)"; got != want {
		t.Errorf("LimitCause = %q, want %q", got, want)
	}
	if got := childproc.LimitCause(childproc.Limits{OpenFiles: 10}, c.ProcessState(), ""); got != "" {
		t.Errorf("LimitCause without a CPU limit = %q, want none", got)
	}
}

func TestLimitAddressSpace(t *testing.T) {
	limits := childproc.Limits{AddressSpace: 4 << 30} // room for the race detector's start
	c := spawnHelper(t, "alloc", nil, childproc.Options{Limits: limits})
	var stderr strings.Builder
	errDone := make(chan struct{})
	go func() { io.Copy(&stderr, c.Stderr()); close(errDone) }()
	out, _ := io.ReadAll(c.Stdout())
	<-errDone
	var ee *childproc.ExitError
	if err := c.Wait(t.Context()); !errors.As(err, &ee) {
		t.Fatalf("got %v (stdout %q), want an *ExitError", err, out)
	}
	if got, want := childproc.LimitCause(limits, c.ProcessState(), stderr.String()), "address-space limit (4096 MiB)"; got != want {
		t.Errorf("LimitCause = %q, want %q; stderr:\n%.2000s", got, want, stderr.String())
	}
}

func TestLimitOpenFiles(t *testing.T) {
	c := spawnHelper(t, "openfiles", nil, childproc.Options{Limits: childproc.Limits{OpenFiles: 32}})
	got, err := output(t, c)
	var n int
	var emfile bool
	if _, serr := fmt.Sscan(got, &n, &emfile); err != nil || serr != nil || n >= 32 || !emfile {
		t.Errorf("helper printed %q, %v; want fewer than 32 files, then EMFILE", got, err)
	}
}

// TestSpawnerThreadsEnd: the spawner goroutines (and their threads) end
// once the children they started have been reaped.
func TestSpawnerThreadsEnd(t *testing.T) {
	before := goleak.IgnoreCurrent()
	for _, o := range []childproc.Options{{Pdeathsig: syscall.SIGKILL}, {NoNewPrivs: true}, {Limits: childproc.Limits{OpenFiles: 64}}} {
		if _, err := output(t, spawn(t, "true", nil, o)); err != nil {
			t.Fatal(err)
		}
	}
	goleak.VerifyNone(t, before)
}
