package supervise

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

const rssSupported = true

var pageSize = int64(os.Getpagesize())

// residentBytes reads the resident set size of pid from /proc/pid/statm.
func residentBytes(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0, err
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, os.ErrInvalid
	}
	pages, err := strconv.ParseInt(string(f[1]), 10, 64)
	return pages * pageSize, err
}

// readOOMCount reads the oom_kill count of this process's memory cgroup,
// which its children share unless they are moved: cgroup v2's
// memory.events, or v1's memory.oom_control.
func readOOMCount() oomCounter {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return oomCounter{}
	}
	var files []string
	for l := range strings.Lines(string(b)) {
		_, rest, _ := strings.Cut(strings.TrimSpace(l), ":")
		ctrl, path, _ := strings.Cut(rest, ":")
		switch {
		case ctrl == "":
			files = append(files, "/sys/fs/cgroup"+path+"/memory.events", "/sys/fs/cgroup/memory.events")
		case ctrl == "memory" || strings.Contains(ctrl, ",memory"):
			files = append(files, "/sys/fs/cgroup/memory"+path+"/memory.oom_control", "/sys/fs/cgroup/memory/memory.oom_control")
		}
	}
	for _, f := range files {
		if c := oomKills(f); c.ok {
			return c
		}
	}
	return oomCounter{}
}

func oomKills(file string) oomCounter {
	ev, err := os.ReadFile(file)
	if err != nil {
		return oomCounter{}
	}
	for l := range strings.Lines(string(ev)) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), "oom_kill "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			return oomCounter{n: n, ok: err == nil}
		}
	}
	return oomCounter{}
}
