//go:build unix

package testproc

import (
	"errors"
	"syscall"
)

// Exists reports whether a process pid exists (a zombie counts).
func Exists(pid int) bool {
	return !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
