//go:build !unix

package harness

import "time"

// selfCPU and procCPU are unknown here: the call section reports no CPU time.
func selfCPU() time.Duration        { return 0 }
func procCPU(pid int) time.Duration { return -1 }

// Context switches are unknown here too.
func selfSwitches() int64        { return -1 }
func procSwitches(pid int) int64 { return -1 }
