//go:build unix

package transport

import (
	"fmt"
	"net"
	"os"
)

// Socketpair returns the two ends of a connected AF_UNIX SOCK_STREAM socket
// pair as files. Both descriptors are close-on-exec, so a child started by
// [os/exec] inherits only the end passed in Cmd.ExtraFiles. The caller owns
// both files: close the child's end after the child has started, and wrap
// the parent's end with [FileConn].
func Socketpair() (parent, child *os.File, err error) {
	fds, err := socketpairCloexec()
	if err != nil {
		return nil, nil, fmt.Errorf("transport: socketpair: %w", os.NewSyscallError("socketpair", err))
	}
	return os.NewFile(uintptr(fds[0]), "procxy-socketpair-parent"),
		os.NewFile(uintptr(fds[1]), "procxy-socketpair-child"), nil
}

// FileConn returns a connection for the socket open as f, such as the end of
// a [Socketpair] or a descriptor inherited from a parent (os.NewFile(3, …)).
// It duplicates the descriptor: the caller still owns f and should close it,
// and closing f does not affect the connection. A Unix socket comes back as a
// *[net.UnixConn]. FileConn fails if f is not a socket.
func FileConn(f *os.File) (net.Conn, error) {
	c, err := net.FileConn(f)
	if err != nil {
		return nil, fmt.Errorf("transport: file conn %s: %w", f.Name(), err)
	}
	return c, nil
}
