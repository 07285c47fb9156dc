//go:build !unix

package supervise

import "syscall"

// sigXCPU: no CPU time limit signal here; no signal matches it.
const sigXCPU syscall.Signal = -1
