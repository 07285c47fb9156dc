package childproc

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// sigXCPU is SIGXCPU on Linux and the BSDs; package syscall has no name
// for it on Windows.
const sigXCPU = syscall.Signal(24)

// cpuSeconds rounds a CPU-time limit up to whole seconds, at least one.
func cpuSeconds(d time.Duration) uint64 {
	return uint64(max((d+time.Second-1)/time.Second, 1))
}

func (l Limits) validate() error {
	if l.AddressSpace < 0 || l.Data < 0 || l.CPUTime < 0 || l.OpenFiles < 0 {
		return fmt.Errorf("%w: negative limit in %+v", ErrInvalidArgument, l)
	}
	return nil
}

// LimitCause names the limit of l that most likely ended a child, such as
// "CPU time limit (2s)", or returns "" when none of them explains the exit.
// ps is the child's final state ([Child.ProcessState]) and stderr the end
// of what it wrote to stderr, where a program reports a failed allocation.
//
// The kernel does not record which limit a process hit, so this is an
// inference: SIGXCPU, or SIGKILL after using the CPU limit (its hard limit
// is one second above it), means the CPU limit; an out-of-memory report on
// stderr (Go's "fatal error: runtime: out of memory", C++'s bad_alloc,
// Python's MemoryError, and the like) under an AddressSpace or Data limit means that
// limit; "too many open files" under an OpenFiles limit means that one.
func LimitCause(l Limits, ps *os.ProcessState, stderr string) string {
	if ps == nil || l == (Limits{}) {
		return ""
	}
	_, sig := exitStatus(ps)
	if l.CPUTime > 0 {
		used := ps.UserTime() + ps.SystemTime()
		if sig == sigXCPU || sig == syscall.SIGKILL && used >= time.Duration(cpuSeconds(l.CPUTime))*time.Second {
			return fmt.Sprintf("CPU time limit (%v)", time.Duration(cpuSeconds(l.CPUTime))*time.Second)
		}
	}
	if l.AddressSpace > 0 || l.Data > 0 {
		for _, s := range oomReports {
			if strings.Contains(stderr, s) {
				if l.AddressSpace > 0 {
					return "address-space limit (" + byteSize(l.AddressSpace) + ")"
				}
				return "data limit (" + byteSize(l.Data) + ")"
			}
		}
	}
	if l.OpenFiles > 0 && strings.Contains(stderr, "too many open files") {
		return fmt.Sprintf("open-files limit (%d)", l.OpenFiles)
	}
	return ""
}

// oomReports are what programs print when an allocation fails. A Go
// program built with -race reports the failure of its fixed-address heap
// mappings as "address space collisions", and its ThreadSanitizer as
// "failed to allocate".
var oomReports = []string{"out of memory", "bad_alloc", "MemoryError", "cannot allocate memory",
	"address space collisions", "ThreadSanitizer failed to allocate"}

// byteSize formats n as whole MiB when it is a multiple of one, else bytes.
func byteSize(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}
