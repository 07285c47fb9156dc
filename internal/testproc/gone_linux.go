package testproc

import (
	"errors"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// Gone returns once process pid has exited (and is not merely a zombie
// waiting for its parent), waiting on a pidfd. It has no timeout: a test
// that leaks the process hangs, and go test's -timeout reports it.
func Gone(t testing.TB, pid int) {
	t.Helper()
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, syscall.ESRCH) {
		return // reaped already
	}
	if err != nil {
		t.Fatalf("pidfd_open(%d): %v", pid, err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err == nil {
			return
		} else if !errors.Is(err, syscall.EINTR) {
			t.Fatalf("poll pidfd of %d: %v", pid, err)
		}
	}
}
