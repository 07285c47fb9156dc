//go:build unix && !linux

package transport

import "syscall"

// socketpairCloexec creates the pair and marks both ends close-on-exec while
// holding syscall.ForkLock, as package net does where SOCK_CLOEXEC is
// missing, so no concurrent fork+exec can inherit them in between.
func socketpairCloexec() ([2]int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		return fds, err
	}
	syscall.CloseOnExec(fds[0])
	syscall.CloseOnExec(fds[1])
	return fds, nil
}
