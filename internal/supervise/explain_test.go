package supervise

import (
	"syscall"
	"testing"
	"time"

	"github.com/procxy/procxy/childproc"
)

func TestExplain(t *testing.T) {
	known := func(n int64) oomCounter { return oomCounter{n: n, ok: true} }
	tests := []struct {
		name          string
		e             childproc.ExitError
		lim           childproc.Limits
		before, after oomCounter
		want          string
	}{
		{"cpu limit", childproc.ExitError{Code: -1, Signal: sigXCPU}, childproc.Limits{CPUTime: 2 * time.Second}, known(0), known(0),
			"it used up its CPU time limit (Limits.CPUTime 2s)"},
		{"address space", childproc.ExitError{Code: 2, Panic: "fatal error: runtime: out of memory\n\ngoroutine 1"}, childproc.Limits{AddressSpace: 512 << 20}, known(0), known(0),
			"it ran out of memory under its address-space limit (Limits.AddressSpace 512.0 MiB)"},
		{"data", childproc.ExitError{Code: 2, Stderr: []string{"fatal error: runtime: out of memory"}}, childproc.Limits{Data: 1 << 30}, known(0), known(0),
			"it ran out of memory under its data limit (Limits.Data 1.0 GiB)"},
		{"go oom without a limit", childproc.ExitError{Code: 2, Panic: "fatal error: runtime: out of memory"}, childproc.Limits{}, known(0), known(0), ""},
		{"open files", childproc.ExitError{Code: 1, Stderr: []string{"open x: too many open files"}}, childproc.Limits{OpenFiles: 16}, known(0), known(0),
			"it ran out of file descriptors under its limit (Limits.OpenFiles 16)"},
		{"oom killer", childproc.ExitError{Code: -1, Signal: syscall.SIGKILL}, childproc.Limits{}, known(3), known(4),
			"killed by the kernel's OOM killer (its cgroup's oom_kill count went from 3 to 4)"},
		{"outside kill", childproc.ExitError{Code: -1, Signal: syscall.SIGKILL}, childproc.Limits{}, known(3), known(3), ""},
		{"cannot tell", childproc.ExitError{Code: -1, Signal: syscall.SIGKILL}, childproc.Limits{}, oomCounter{}, oomCounter{},
			"killed from outside; whether by the kernel's OOM killer cannot be told here (its memory cgroup's oom_kill count is not readable)"},
		{"our kill", childproc.ExitError{Code: -1, Signal: syscall.SIGKILL, Killed: true}, childproc.Limits{}, oomCounter{}, oomCounter{}, ""},
		{"plain exit", childproc.ExitError{Code: 3}, childproc.Limits{CPUTime: time.Second}, known(0), known(0), ""},
	}
	for _, tt := range tests {
		if got := explain(&tt.e, tt.lim, tt.before, tt.after); got != tt.want {
			t.Errorf("%s: explain = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestExitErrorMessage(t *testing.T) {
	e := &childproc.ExitError{Name: "procxy: child x.Hog", PID: 7, Code: -1, Signal: sigXCPU,
		Reason: "it used up its CPU time limit (Limits.CPUTime 1s)", Stderr: []string{"a", "b"}}
	want := "procxy: child x.Hog (pid 7) was killed by signal CPU time limit exceeded: it used up its CPU time limit (Limits.CPUTime 1s); last stderr: a | b"
	if got := e.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{512: "512 B", 3 << 10: "3.0 KiB", 310<<20 + 512<<10: "310.5 MiB", 5 << 30: "5.0 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestLimiterNext(t *testing.T) {
	l := Limiter{Max: 2, Window: time.Minute}
	now := time.Unix(1000, 0)
	if !l.Allow(now) || !l.Allow(now.Add(time.Second)) {
		t.Fatal("the first two restarts should fit")
	}
	if l.Allow(now.Add(2 * time.Second)) {
		t.Fatal("a third restart within the window should not fit")
	}
	if got := l.Next(now.Add(2 * time.Second)); got != 58*time.Second {
		t.Errorf("Next = %v, want 58s (when the oldest leaves the window)", got)
	}
	if none := (&Limiter{Max: 0, Window: time.Minute}); none.Allow(now) {
		t.Error("Max 0 allows no restart")
	}
	if all := (&Limiter{Max: -1}); !all.Allow(now) || all.Next(now) != 0 {
		t.Error("negative Max is unlimited")
	}
}
