//go:build !unix

package transport

import (
	"errors"
	"fmt"
)

// maxPathLen is the longest socket path accepted: sockaddr_un's 108 bytes
// less the terminating NUL.
const maxPathLen = 107

// SocketDir returns the current user's private directory for sockets. It
// needs a Unix system; here it returns an error wrapping
// [errors.ErrUnsupported].
func SocketDir() (string, error) {
	return "", fmt.Errorf("transport: a private socket directory needs a Unix system; listen on an explicit address such as tcp://127.0.0.1:0 instead: %w", errors.ErrUnsupported)
}
