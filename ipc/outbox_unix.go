//go:build unix

package ipc

import (
	"errors"
	"net"
	"syscall"
)

// tryWriter returns a function that writes as much as the socket takes
// right now, without blocking, or nil when the connection has no
// descriptor to write to (TLS, in-memory pipes).
func tryWriter(c net.Conn) func([]byte) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return func(b []byte) (int, error) {
		var n int
		var werr error
		// Returning true from the callback ends the Write at once, whatever
		// happened, so the caller never waits for the socket to drain.
		err := raw.Write(func(fd uintptr) bool {
			for {
				n, werr = syscall.Write(int(fd), b)
				if werr != syscall.EINTR {
					return true
				}
			}
		})
		if err != nil {
			return 0, err
		}
		if errors.Is(werr, syscall.EAGAIN) {
			return 0, nil
		}
		if werr != nil {
			return 0, werr
		}
		return n, nil
	}
}
