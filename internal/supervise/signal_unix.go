//go:build unix

package supervise

import "syscall"

// sigXCPU is the signal of a CPU time limit (RLIMIT_CPU).
const sigXCPU = syscall.SIGXCPU
