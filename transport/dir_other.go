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
	return "", fmt.Errorf("transport: socket dir: %w", errors.ErrUnsupported)
}
