//go:build unix

package supervise

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/procxy/procxy/childproc"
)

// TestCPULimitExplained: a child that runs past its CPU time limit dies of
// SIGXCPU, and its exit error says which limit ended it. The shell sets
// the limit itself here (ulimit -t), as childproc does from Limits.
func TestCPULimitExplained(t *testing.T) {
	c, err := Start(t.Context(), Spec{
		Name:    "test: child burner",
		Path:    "/bin/sh",
		Args:    []string{"-c", "ulimit -S -t 1; echo burning >&2; while :; do :; done"},
		Options: childproc.Options{Limits: childproc.Limits{CPUTime: time.Second}},
	})
	if err != nil {
		t.Fatal(err)
	}
	<-c.Exited()
	e := c.Err()
	if e.Signal != syscall.SIGXCPU {
		t.Fatalf("got %v, want an end by SIGXCPU", e)
	}
	want := "test: child burner (pid " // then the pid, the signal and the reason
	if msg := e.Error(); !strings.HasPrefix(msg, want) || !strings.Contains(msg, "it used up its CPU time limit (Limits.CPUTime 1s); last stderr: burning") {
		t.Errorf("Error() = %q, want it to name the CPU time limit and the last stderr line", msg)
	}
}

// TestStopKillsAfterGrace: a child that ignores the request to stop is
// killed once the grace has passed, with the cause given.
func TestStopKillsAfterGrace(t *testing.T) {
	c, err := Start(t.Context(), Spec{Name: "test: child sleeper", Path: "/bin/sh", Args: []string{"-c", "trap '' TERM; sleep 60"},
		Options: childproc.Options{ProcessGroup: true}, KillGroup: true})
	if err != nil {
		t.Fatal(err)
	}
	cause := &RecycleError{Why: "testing"}
	if err := c.Stop(t.Context(), 50*time.Millisecond, cause); err != nil {
		t.Fatal(err)
	}
	if e := c.Err(); e.Signal != syscall.SIGKILL || e.Cause != cause {
		t.Errorf("got %v, want SIGKILL with the cause", e)
	}
}

// TestAddressSpaceLimitExplained: a Go child that runs out of memory under
// an address-space limit says "fatal error: out of memory", and its exit
// error names the limit. The shell sets the limit (ulimit -v), as
// childproc does from Limits. The child is built without the race
// detector, whose shadow memory no useful limit leaves room for.
func TestAddressSpaceLimitExplained(t *testing.T) {
	hog := filepath.Join(t.TempDir(), "hog")
	build := exec.CommandContext(t.Context(), filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", hog, "./testdata/hog")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build testdata/hog: %v\n%s", err, out)
	}
	c, err := Start(t.Context(), Spec{
		Name:    "test: child hog",
		Path:    "/bin/sh",
		Args:    []string{"-c", `ulimit -v 1048576; exec "$0"`, hog},
		Options: childproc.Options{Limits: childproc.Limits{AddressSpace: 1 << 30}},
	})
	if err != nil {
		t.Fatal(err)
	}
	<-c.Exited()
	e := c.Err()
	want := "it ran out of memory under its address-space limit (Limits.AddressSpace 1.0 GiB)"
	if e.Reason != want || !strings.HasPrefix(e.Panic, "fatal error: ") {
		t.Errorf("got %v (Reason %q), want a Go out-of-memory report and Reason %q", e, e.Reason, want)
	}
}
