package cli

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// cpuTime returns the time the threads of process pid have spent on a CPU,
// to the nanosecond (/proc/PID/task/*/schedstat), and whether it could be
// read. Threads that have exited no longer count; Go and Node.js keep
// theirs.
func cpuTime(pid int) (time.Duration, bool) {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", pid))
	var sum time.Duration
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the thread has exited
		}
		ns, err := strconv.ParseInt(string(bytes.Fields(b)[0]), 10, 64)
		if err != nil {
			return 0, false
		}
		sum += time.Duration(ns)
	}
	return sum, len(files) > 0
}
