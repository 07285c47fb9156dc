package childproc

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Linux ties three things to the OS thread that forks a child, not to the
// process: the parent-death signal fires when that thread exits, a child
// inherits the thread's no_new_privs flag, and a child that asked to be
// traced (PTRACE_TRACEME) is traced by that thread alone. Go ends a thread
// whenever a goroutine exits while locked to it, so a child forked from a
// caller's locked goroutine could be killed long before its parent dies.
//
// Children that need any of these are therefore forked from one of two
// spawner threads: goroutines locked to their OS thread that live as long
// as any child they started. When the last such child has been reaped and
// no spawn is under way, the goroutine returns and its thread ends, which
// can no longer signal anyone. Children that need none of them are forked
// from the caller's thread, as before.
var (
	plainSpawner = &spawnThread{}                 // Pdeathsig and Limits
	nnpSpawner   = &spawnThread{noNewPrivs: true} // everything with NoNewPrivs
)

// spawnThread is one spawner thread. Its methods are safe for concurrent use.
type spawnThread struct {
	noNewPrivs bool // set PR_SET_NO_NEW_PRIVS on the thread before any fork

	mu    sync.Mutex           // guards the fields below
	users int                  // spawns under way plus live children started on the thread
	reqs  chan func(err error) // the running goroutine's queue; nil when none runs
	quit  chan struct{}        // closed to end the running goroutine
}

// acquire counts a user and returns the queue of the running goroutine,
// starting one when none runs.
func (t *spawnThread) acquire() chan<- func(error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.users++
	if t.reqs == nil {
		t.reqs, t.quit = make(chan func(error)), make(chan struct{})
		// Owned by t: it returns when release closes quit, once the last
		// user is gone.
		go t.loop(t.reqs, t.quit)
	}
	return t.reqs
}

// release drops a user taken by acquire; the last one ends the goroutine.
func (t *spawnThread) release() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.users--
	if t.users == 0 {
		close(t.quit)
		t.reqs, t.quit = nil, nil
	}
}

// loop runs the spawns on a locked thread. It never unlocks: the thread
// ends with the goroutine, so that no goroutine ever runs on a thread with
// no_new_privs set, and no child outlives the thread it was forked from.
func (t *spawnThread) loop(reqs <-chan func(error), quit <-chan struct{}) {
	runtime.LockOSThread()
	var err error
	if t.noNewPrivs {
		if e := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); e != nil {
			err = setupError{fmt.Errorf("childproc: NoNewPrivs: %w", os.NewSyscallError("prctl(PR_SET_NO_NEW_PRIVS)", e))}
		}
	}
	for {
		select {
		case f := <-reqs:
			f(err)
		case <-quit:
			return
		}
	}
}

// startProcess starts the process, on a spawner thread when r needs one.
// The returned release func, when not nil, must be called once the process
// has been reaped.
func startProcess(path string, argv []string, attr *os.ProcAttr, r *resolved) (*os.Process, func(), error) {
	var t *spawnThread
	switch {
	case r.NoNewPrivs:
		t = nnpSpawner
	case r.Pdeathsig != 0 || r.Limits != (Limits{}):
		t = plainSpawner
	default:
		p, err := os.StartProcess(path, argv, attr)
		return p, nil, err
	}
	var (
		p    *os.Process
		err  error
		done = make(chan struct{})
	)
	t.acquire() <- func(threadErr error) {
		defer close(done)
		if err = threadErr; err == nil {
			p, err = startLimited(path, argv, attr, r.Limits)
		}
	}
	<-done
	if err != nil {
		t.release()
		return nil, nil, err
	}
	return p, t.release, nil
}

// startLimited starts the process with limits l in force before its first
// instruction: the child calls PTRACE_TRACEME just before execve, so it
// stops at the exec, still untouched by the new program; this thread, its
// tracer, sets the limits with prlimit(2) and detaches. When the child
// cannot be traced (this process runs under a tracer such as strace -f or
// a debugger, or ptrace is forbidden), the start is retried untraced and
// the limits are set right after the exec returns, so the program may run
// its first instructions without them. It runs on a spawner thread.
func startLimited(path string, argv []string, attr *os.ProcAttr, l Limits) (*os.Process, error) {
	if l == (Limits{}) {
		return os.StartProcess(path, argv, attr)
	}
	traced := *attr
	sys := *attr.Sys
	sys.Ptrace = true
	traced.Sys = &sys
	p, err := os.StartProcess(path, argv, &traced)
	if errors.Is(err, syscall.EPERM) { // TRACEME refused, or a real EPERM that the retry repeats
		p, err = os.StartProcess(path, argv, attr)
		if err != nil {
			return nil, err
		}
		return p, killOnError(p, setLimits(p.Pid, l, attr.Sys.Credential))
	}
	if err != nil {
		return nil, err
	}
	return p, killOnError(p, limitAndDetach(p.Pid, l, attr.Sys.Credential))
}

// killOnError kills and reaps p when err is not nil, and returns err.
func killOnError(p *os.Process, err error) error {
	if err != nil {
		p.Kill()
		p.Wait()
	}
	return err
}

// siginfo codes for SIGCHLD (asm-generic/siginfo.h).
const (
	cldTrapped = 4
)

// limitAndDetach waits for the traced child's exec stop, sets l and
// detaches. A child that exits first (SIGKILL) is left for its waiter to
// reap.
func limitAndDetach(pid int, l Limits, cred *syscall.Credential) error {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WSTOPPED|unix.WNOWAIT, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return setupError{fmt.Errorf("childproc: Limits: %w", os.NewSyscallError("waitid", err))}
		}
		if info.Code != cldTrapped {
			return nil // it has exited; Wait reports how
		}
		// Should this process die before the detach, the child dies too
		// rather than run without its limits.
		unix.PtraceSetOptions(pid, unix.PTRACE_O_EXITKILL)
		// A signal that arrived before the exec's SIGTRAP stops the child
		// first: pass it on and wait for the SIGTRAP, which would kill the
		// child if it were left pending after the detach. A stop signal is
		// dropped instead: passed on, it would stop the child again, and
		// again, before the SIGTRAP.
		if sig := syscall.Signal(siginfoStatus(&info)); sig != syscall.SIGTRAP {
			switch sig {
			case syscall.SIGSTOP, syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU:
				sig = 0
			}
			if err := unix.PtraceCont(pid, int(sig)); err != nil {
				return setupError{fmt.Errorf("childproc: Limits: %w", os.NewSyscallError("ptrace(PTRACE_CONT)", err))}
			}
			continue
		}
		err = setLimits(pid, l, cred)
		if derr := unix.PtraceDetach(pid); derr != nil && err == nil {
			err = setupError{fmt.Errorf("childproc: Limits: %w", os.NewSyscallError("ptrace(PTRACE_DETACH)", derr))}
		}
		return err
	}
}

// siginfoStatus returns si_status of a SIGCHLD siginfo: the union after
// the three int header fields starts at 16 on 64-bit platforms (it holds
// pointers) and 12 on 32-bit ones; si_status follows si_pid and si_uid.
func siginfoStatus(info *unix.Siginfo) int32 {
	off := uintptr(12)
	if unsafe.Sizeof(uintptr(0)) == 8 {
		off = 16
	}
	return *(*int32)(unsafe.Add(unsafe.Pointer(info), off+8))
}

// setLimits sets each limit of l on pid, soft and hard, so that the child
// cannot raise it again. The CPU limit's hard value is one second above
// the soft one: the kernel sends SIGXCPU at the soft limit, which ends
// most programs (Go ignores it) and names the cause, and SIGKILL at the
// hard one. cred is the child's Credential, or nil. It runs on a spawner
// thread.
func setLimits(pid int, l Limits, cred *syscall.Credential) (err error) {
	if cred != nil && (int(cred.Uid) != os.Getuid() || int(cred.Gid) != os.Getgid()) {
		restore, err := actAs(cred)
		if err != nil {
			return setupError{fmt.Errorf("childproc: Limits: %w", err)}
		}
		defer restore()
	}
	set := func(name string, res int, cur, max uint64) error {
		if err := unix.Prlimit(pid, res, &unix.Rlimit{Cur: cur, Max: max}, nil); err != nil {
			why := ""
			if errors.Is(err, syscall.EPERM) {
				why = " (above this process's hard limit, which needs CAP_SYS_RESOURCE)"
			}
			return setupError{fmt.Errorf("childproc: Limits: set %s to %d%s: %w", name, cur, why, os.NewSyscallError("prlimit", err))}
		}
		return nil
	}
	if l.AddressSpace > 0 {
		if err := set("RLIMIT_AS", unix.RLIMIT_AS, uint64(l.AddressSpace), uint64(l.AddressSpace)); err != nil {
			return err
		}
	}
	if l.Data > 0 {
		if err := set("RLIMIT_DATA", unix.RLIMIT_DATA, uint64(l.Data), uint64(l.Data)); err != nil {
			return err
		}
	}
	if l.CPUTime > 0 {
		secs := cpuSeconds(l.CPUTime)
		if err := set("RLIMIT_CPU", unix.RLIMIT_CPU, secs, secs+1); err != nil {
			return err
		}
	}
	if l.OpenFiles > 0 {
		if err := set("RLIMIT_NOFILE", unix.RLIMIT_NOFILE, uint64(l.OpenFiles), uint64(l.OpenFiles)); err != nil {
			return err
		}
	}
	return nil
}

// actAs sets the real user and group ids of this OS thread — a locked
// spawner thread — to cred's, keeping the effective and saved ids, and
// returns the func that restores them. prlimit(2) lets a process limit
// another whose ids all equal its real ids without CAP_SYS_RESOURCE,
// which containers usually drop; CAP_SETUID and CAP_SETGID, which a child
// with a Credential needs anyway, allow the switch. The raw system calls
// change this thread alone (Go's Setuid would change every thread).
func actAs(cred *syscall.Credential) (restore func(), err error) {
	const keep = uintptr(^uint32(0)) // -1: leave the id unchanged
	rgid, ruid := os.Getgid(), os.Getuid()
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(cred.Gid), keep, keep); e != 0 {
		return nil, os.NewSyscallError("setresgid", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(cred.Uid), keep, keep); e != 0 {
		unix.RawSyscall(unix.SYS_SETRESGID, uintptr(rgid), keep, keep)
		return nil, os.NewSyscallError("setresuid", e)
	}
	return func() {
		_, _, e1 := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(ruid), keep, keep)
		_, _, e2 := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(rgid), keep, keep)
		if e1 != 0 || e2 != 0 {
			// The effective ids never changed, so this cannot happen; a
			// spawner thread left with another real id must not go on.
			panic(fmt.Sprintf("childproc: restoring the spawner thread's real ids: %v, %v", e1, e2))
		}
	}, nil
}

// checkIsolation has nothing to refuse on Linux.
func checkIsolation(*resolved) error { return nil }
