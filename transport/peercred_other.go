//go:build !linux

package transport

import (
	"errors"
	"fmt"
	"net"
)

// PeerCred returns the user id, group id and process id of the process at the
// other end of c. It needs Linux; here it returns an error wrapping
// [errors.ErrUnsupported].
func PeerCred(c *net.UnixConn) (uid, gid, pid int, err error) {
	return 0, 0, 0, fmt.Errorf("transport: peer credentials need Linux (SO_PEERCRED); authenticate peers with a token or mutual TLS instead: %w", errors.ErrUnsupported)
}
