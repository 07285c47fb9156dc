//go:build !unix

package transport

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// Socketpair returns the two ends of a connected socket pair. It needs a Unix
// system; here it returns an error wrapping [errors.ErrUnsupported].
func Socketpair() (parent, child *os.File, err error) {
	return nil, nil, fmt.Errorf("transport: a socketpair needs a Unix system; here run the code in a worker process that serves it over ipc on tcp:// (procxy.Serve and procxy.NewRemote): %w", errors.ErrUnsupported)
}

// FileConn returns a connection for the socket open as f. It needs a Unix
// system; here it returns an error wrapping [errors.ErrUnsupported].
func FileConn(f *os.File) (net.Conn, error) {
	return nil, fmt.Errorf("transport: an inherited socket needs a Unix system; here connect over tcp:// instead: %w", errors.ErrUnsupported)
}
