//go:build unix

package childproc

import (
	"errors"
	"net"
	"os"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// sysProcAttr builds the process attributes for r.
func sysProcAttr(r *resolved) (*syscall.SysProcAttr, error) {
	if err := checkIsolation(r); err != nil {
		return nil, err
	}
	a := &syscall.SysProcAttr{
		Setsid:  r.Detached,
		Setpgid: r.ProcessGroup && !r.Detached, // setsid already makes a new group
	}
	if c := r.Credential; c != nil {
		// Groups: nil with NoSetGroups false clears the supplementary
		// groups, as Node (libuv) does.
		a.Credential = &syscall.Credential{Uid: c.UID, Gid: c.GID}
	}
	if err := setPdeathsig(a, r.Pdeathsig); err != nil {
		return nil, err
	}
	return a, nil
}

// exitStatus returns the exit code (-1 when signalled) and the signal.
func exitStatus(ps *os.ProcessState) (int, syscall.Signal) {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, ws.Signal()
	}
	return ps.ExitCode(), 0
}

// killGroup signals every process in the group pgid.
func killGroup(pgid int, sig syscall.Signal) error {
	if err := syscall.Kill(-pgid, sig); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	return nil
}

func errnoName(e syscall.Errno) string {
	if n := unix.ErrnoName(e); n != "" {
		return n
	}
	return "errno " + strconv.Itoa(int(e))
}

// SignalName returns the signal's name, such as "SIGTERM", as Node prints it.
func signalName(s syscall.Signal) string {
	if n := unix.SignalName(s); n != "" {
		return n
	}
	return s.String()
}

// checkExecutable reports whether path is a file this process may execute,
// with the errno execvp would give: ENOENT when it does not exist, EACCES
// when it is a directory or lacks permission.
func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return &os.PathError{Op: "exec", Path: path, Err: syscall.EACCES}
	}
	if err := unix.Access(path, unix.X_OK); err != nil {
		return &os.PathError{Op: "exec", Path: path, Err: err}
	}
	return nil
}

// socketpair returns the parent's end of a new AF_UNIX stream socketpair as
// a net.Conn and the child's end as a file. Both are close-on-exec, so no
// other child started meanwhile inherits them; StartProcess clears the
// flag on the child's copy only.
func socketpair() (net.Conn, *os.File, error) {
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, os.NewSyscallError("socketpair", err)
	}
	pf := os.NewFile(uintptr(fds[0]), "ipc-parent")
	cf := os.NewFile(uintptr(fds[1]), "ipc-child")
	c, err := net.FileConn(pf) // a close-on-exec, non-blocking dup on the netpoller
	pf.Close()
	if err != nil {
		cf.Close()
		return nil, nil, err
	}
	return c, cf, nil
}

// inheritedConn wraps the fd a parent passed and closes the inherited copy,
// which arrived without close-on-exec: the returned conn is a
// close-on-exec dup, so no grandchild inherits the channel.
func inheritedConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "node-ipc")
	if f == nil {
		return nil, syscall.EBADF
	}
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	if _, ok := c.(*net.UnixConn); !ok {
		c.Close()
		return nil, errors.New("not a unix socket")
	}
	return c, nil
}

// markCloseOnExec sets close-on-exec on an inherited fd, so that processes
// started before Parent is called do not inherit it.
func markCloseOnExec(fd int) { syscall.CloseOnExec(fd) }

const ipcSupported = true
