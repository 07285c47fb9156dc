package supervise

import (
	"fmt"
	"strings"
	"syscall"

	"github.com/procxy/procxy/childproc"
)

// oomCounter is a reading of the cgroup's oom_kill count; ok is false
// where it cannot be read.
type oomCounter struct {
	n  int64
	ok bool
}

// explain says why a child ended when it was not its own doing and can be
// told: a resource limit of lim, or the kernel's OOM killer (its cgroup's
// oom_kill count went up between before and after). "" otherwise.
func explain(e *childproc.ExitError, lim childproc.Limits, before, after oomCounter) string {
	report := e.Panic + "\n" + strings.Join(e.Stderr, "\n")
	goOOM := strings.Contains(report, "fatal error: out of memory") || strings.Contains(report, "runtime: out of memory")
	switch {
	case e.Signal == sigXCPU:
		if lim.CPUTime > 0 {
			return fmt.Sprintf("it used up its CPU time limit (Limits.CPUTime %v)", lim.CPUTime)
		}
		return "it used up its CPU time limit (RLIMIT_CPU)"
	case e.Code > 0 && goOOM && lim.AddressSpace > 0:
		return fmt.Sprintf("it ran out of memory under its address-space limit (Limits.AddressSpace %s)", FormatBytes(lim.AddressSpace))
	case e.Code > 0 && goOOM && lim.Data > 0:
		return fmt.Sprintf("it ran out of memory under its data limit (Limits.Data %s)", FormatBytes(lim.Data))
	case e.Code > 0 && strings.Contains(report, "too many open files") && lim.OpenFiles > 0:
		return fmt.Sprintf("it ran out of file descriptors under its limit (Limits.OpenFiles %d)", lim.OpenFiles)
	case e.Signal == syscall.SIGKILL && e.Cause == nil && !e.Killed:
		switch {
		case !before.ok || !after.ok:
			if lim.CPUTime > 0 {
				return fmt.Sprintf("killed from outside, perhaps at the hard end of its CPU time limit (Limits.CPUTime %v) or by the kernel's OOM killer (which cannot be told here)", lim.CPUTime)
			}
			return "killed from outside; whether by the kernel's OOM killer cannot be told here (its memory cgroup's oom_kill count is not readable)"
		case after.n > before.n:
			return fmt.Sprintf("killed by the kernel's OOM killer (its cgroup's oom_kill count went from %d to %d)", before.n, after.n)
		case lim.CPUTime > 0:
			return fmt.Sprintf("killed from outside, perhaps at the hard end of its CPU time limit (Limits.CPUTime %v)", lim.CPUTime)
		}
	}
	return ""
}
