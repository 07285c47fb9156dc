//go:build !linux

package cli

import "time"

// cpuTime is not available here: procxy bench reports no CPU time.
func cpuTime(int) (time.Duration, bool) { return 0, false }
