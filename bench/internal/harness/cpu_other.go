//go:build !unix

package harness

import "time"

// selfCPU and procCPU are unknown here: the call section reports no CPU time.
func selfCPU() time.Duration        { return 0 }
func procCPU(pid int) time.Duration { return -1 }
