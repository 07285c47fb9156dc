package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// memory is a process's resident set, in KiB (/proc/<pid>/status).
type memory struct{ rss, anon, file float64 }

// vmRSS returns the VmRSS, RssAnon and RssFile of pid, in KiB.
func vmRSS(pid int) (memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memory{}, err
	}
	var m memory
	found := 0
	for line := range bytes.Lines(b) {
		for key, dst := range map[string]*float64{"VmRSS:": &m.rss, "RssAnon:": &m.anon, "RssFile:": &m.file} {
			if v, ok := bytes.CutPrefix(line, []byte(key)); ok {
				v = bytes.TrimSpace(bytes.TrimSuffix(bytes.TrimSpace(v), []byte("kB")))
				if *dst, err = strconv.ParseFloat(string(v), 64); err != nil {
					return m, err
				}
				found++
			}
		}
	}
	if found != 3 {
		return m, fmt.Errorf("no VmRSS, RssAnon or RssFile in /proc/%d/status", pid)
	}
	return m, nil
}

// usage is CPU time, context switches and I/O system calls of a whole
// process.
type usage struct {
	cpu          time.Duration
	vcs, ics     int64 // voluntary and involuntary context switches
	syscr, syscw int64 // read and write system calls (/proc/<pid>/io)
}

// addIO adds the read and write system call counts of /proc/<pid>/io.
func (u *usage) addIO(pid string) {
	b, err := os.ReadFile("/proc/" + pid + "/io")
	if err != nil {
		return
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("syscr:")); ok {
			u.syscr, _ = strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		} else if v, ok := bytes.CutPrefix(line, []byte("syscw:")); ok {
			u.syscw, _ = strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
		}
	}
}

// selfUsage is this process's usage (getrusage: all threads, µs resolution).
func selfUsage() usage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	u := usage{
		cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()),
		vcs: ru.Nvcsw, ics: ru.Nivcsw,
	}
	u.addIO("self")
	return u
}

// procUsage is the usage of another process: utime+stime from
// /proc/<pid>/stat (clock ticks, 10 ms), context switches summed over its
// live threads.
func procUsage(pid int) usage {
	var u usage
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u
	}
	if i := bytes.LastIndexByte(b, ')'); i >= 0 {
		f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state); utime is field 14, stime 15
		if len(f) > 12 {
			ut, _ := strconv.ParseInt(string(f[11]), 10, 64)
			st, _ := strconv.ParseInt(string(f[12]), 10, 64)
			u.cpu = time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ is 100 on Linux
		}
	}
	u.addIO(strconv.Itoa(pid))
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for line := range bytes.Lines(b) {
			if v, ok := bytes.CutPrefix(line, []byte("voluntary_ctxt_switches:")); ok {
				n, _ := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
				u.vcs += n
			} else if v, ok := bytes.CutPrefix(line, []byte("nonvoluntary_ctxt_switches:")); ok {
				n, _ := strconv.ParseInt(string(bytes.TrimSpace(v)), 10, 64)
				u.ics += n
			}
		}
	}
	return u
}

// ownGroup puts the command in its own process group, kills that whole
// group when the command's context ends, and kills the command if this
// process dies.
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// marked returns the processes other than this one whose environment
// holds marker ("KEY=value"): every process this run started, directly or
// through the Node parent, carries it.
func marked(marker string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	want := append([]byte(marker), 0)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue // gone, or not ours
		}
		if bytes.HasPrefix(env, want) || bytes.Contains(env, append([]byte{0}, want...)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// kill sends SIGKILL to pid.
func kill(pid int) { syscall.Kill(pid, syscall.SIGKILL) }
