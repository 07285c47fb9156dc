//go:build unix

package harness

import (
	"os"
	"syscall"
)

// socketpair returns both ends of socketpair(AF_UNIX, SOCK_STREAM), close-on-exec
// (exec.Cmd.ExtraFiles dups the child's end without the flag).
func socketpair() (parent, child *os.File, err error) {
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
	return os.NewFile(uintptr(fds[0]), "socketpair-parent"), os.NewFile(uintptr(fds[1]), "socketpair-child"), nil
}
