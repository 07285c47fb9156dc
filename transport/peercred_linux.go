package transport

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// PeerCred returns the user id, group id and process id of the process at the
// other end of c, as the kernel recorded them when the connection was made
// (for a [Socketpair], when the pair was created). It needs Linux; elsewhere
// it returns an error wrapping [errors.ErrUnsupported].
func PeerCred(c *net.UnixConn) (uid, gid, pid int, err error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return 0, 0, 0, fmt.Errorf("transport: peer credentials: %w", err)
	}
	var cred *unix.Ucred
	var credErr error
	// Control, not File: File would dup the descriptor and make it blocking.
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return 0, 0, 0, fmt.Errorf("transport: peer credentials: %w", err)
	}
	if credErr != nil {
		return 0, 0, 0, fmt.Errorf("transport: peer credentials: %w", credErr)
	}
	return int(cred.Uid), int(cred.Gid), int(cred.Pid), nil
}
