package procxy_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/childproc"
)

// Isolated is a child type that breaks limits on request.
type Isolated struct{}

func init() { procxy.Register[Isolated](nil) }

// Alloc reserves mib MiB in 64 MiB blocks it never touches, so they cost
// address space and not memory.
func (*Isolated) Alloc(mib int) int {
	var keep [][]byte
	for len(keep)*64 < mib {
		keep = append(keep, make([]byte, 64<<20))
	}
	return len(keep) * 64
}

// Spin burns CPU and ignores its context.
func (*Isolated) Spin() int {
	n := 0
	for {
		n++
	}
}

// OpenFiles opens /dev/null up to n times and returns how many it opened.
func (*Isolated) OpenFiles(n int) int {
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for range n {
		f, err := os.Open(os.DevNull)
		if err != nil {
			return len(files)
		}
		files = append(files, f)
	}
	return len(files)
}

// Status returns the child's /proc/self/status.
func (*Isolated) Status() (string, error) {
	b, err := os.ReadFile("/proc/self/status")
	return string(b), err
}

func (*Isolated) PID() int { return os.Getpid() }

func newIsolated(t *testing.T, opts ...procxy.Option) *procxy.Proxy[Isolated] {
	t.Helper()
	return newProxy[Isolated](t, opts...)
}

// status returns a field of the child's /proc/self/status, its spaces folded.
func status(t *testing.T, p *procxy.Proxy[Isolated], field string) string {
	t.Helper()
	st, err := procxy.Call[string](t.Context(), p, "Status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:[ \t]*(.*)$`).FindStringSubmatch(st)
	if m == nil {
		t.Fatalf("no %s in the child's status:\n%s", field, st)
	}
	return strings.Join(strings.Fields(m[1]), " ")
}

// TestIsolationAddressSpace: a child that maps more than its address-space
// limit dies; the call gets an *ExitError and the next call a new child.
func TestIsolationAddressSpace(t *testing.T) {
	limits := childproc.Limits{AddressSpace: 4 << 30} // room for a -race child to start
	p := newIsolated(t, procxy.Limits(limits), procxy.Retries(1))
	first, err := procxy.Call[int](t.Context(), p, "PID")
	if err != nil {
		t.Fatal(err)
	}
	n, err := procxy.Call[int](t.Context(), p, "Alloc", 16<<10)
	var ee *procxy.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("Alloc(16 GiB) under a 4 GiB limit = %d, %v; want an *ExitError", n, err)
	}
	t.Logf("breach: %v", err)
	second, err := procxy.Call[int](t.Context(), p, "PID")
	if err != nil || second == first {
		t.Fatalf("after the breach: pid %d, %v; want a new child (was %d)", second, err, first)
	}
	// The new child runs under the same limit.
	if n, err := procxy.Call[int](t.Context(), p, "Alloc", 256); err != nil || n != 256 {
		t.Errorf("Alloc(256 MiB) in the new child = %d, %v", n, err)
	}
}

// TestIsolationCPUTime: a method that spins past the CPU limit ends its
// child (Go ignores SIGXCPU, so the kernel's SIGKILL a second later does).
func TestIsolationCPUTime(t *testing.T) {
	p := newIsolated(t, procxy.Limits(childproc.Limits{CPUTime: time.Second}))
	_, err := procxy.Call[int](t.Context(), p, "Spin")
	var ee *procxy.ExitError
	if !errors.As(err, &ee) || (ee.Signal != syscall.SIGKILL && ee.Signal != syscall.SIGXCPU) {
		t.Fatalf("Spin under a 1 s CPU limit: got %v, want an *ExitError for SIGXCPU or SIGKILL", err)
	}
	<-p.Done()
	if !errors.As(p.Err(), &ee) {
		t.Errorf("proxy Err() = %v, want the *ExitError", p.Err())
	}
}

func TestIsolationOpenFiles(t *testing.T) {
	p := newIsolated(t, procxy.Limits(childproc.Limits{OpenFiles: 64}))
	n, err := procxy.Call[int](t.Context(), p, "OpenFiles", 1000)
	if err != nil || n >= 64 {
		t.Fatalf("OpenFiles(1000) under a limit of 64 = %d, %v; want fewer than 64", n, err)
	}
	if got := status(t, p, "Pid"); got == "" {
		t.Error("child unusable after hitting its open-files limit")
	}
}

func TestIsolationNoNewPrivs(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []procxy.Option
		want string
	}{
		{"default", nil, "0"},
		{"no-new-privs", []procxy.Option{procxy.NoNewPrivs()}, "1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := status(t, newIsolated(t, tt.opts...), "NoNewPrivs"); got != tt.want {
				t.Errorf("child NoNewPrivs = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestIsolationRunAs: RunAs(65534, 65534) runs the child as nobody (its
// effective ids checked in /proc), under its Limits; without the
// privilege, New fails with a permission error.
func TestIsolationRunAs(t *testing.T) {
	if os.Getuid() != 0 {
		_, err := procxy.New[Isolated](t.Context(), procxy.RunAs(0, 0))
		if !errors.Is(err, os.ErrPermission) {
			t.Fatalf("unprivileged RunAs(0, 0): got %v, want os.ErrPermission", err)
		}
		return
	}
	exe := worldExecutableCopy(t)
	p := newIsolated(t, procxy.Executable(exe), procxy.Dir("/"), procxy.RunAs(65534, 65534), procxy.NoNewPrivs(),
		procxy.Limits(childproc.Limits{OpenFiles: 64}))
	for field, want := range map[string]string{"Uid": "65534 65534 65534 65534", "Gid": "65534 65534 65534 65534", "Groups": "", "NoNewPrivs": "1"} {
		if got := status(t, p, field); got != want {
			t.Errorf("child %s = %q, want %q", field, got, want)
		}
	}
	// The limits apply to the child as nobody: it opens fewer than 64 files.
	if n, err := procxy.Call[int](t.Context(), p, "OpenFiles", 100); err != nil || n >= 64 {
		t.Errorf("OpenFiles(100) as nobody under a 64-file limit = %d, %v", n, err)
	}
	// A child that may not run its executable fails to start, and says why.
	private := filepath.Join(filepath.Dir(exe), "private.test")
	copyTestBinary(t, private, 0o700)
	_, err := procxy.New[Isolated](t.Context(), procxy.RunAs(65534, 65534), procxy.Executable(private), procxy.Dir("/"))
	if err == nil || !errors.Is(err, os.ErrPermission) {
		t.Errorf("RunAs with an executable nobody may run: got %v, want os.ErrPermission", err)
	}
}

// worldExecutableCopy copies the test binary where any user may run it.
func worldExecutableCopy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	exe := filepath.Join(dir, "procxy.test")
	copyTestBinary(t, exe, 0o755)
	return exe
}

func copyTestBinary(t *testing.T, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(os.Args[0])
	if err == nil {
		err = os.WriteFile(to, b, mode)
	}
	if err != nil {
		t.Fatal(err)
	}
}
