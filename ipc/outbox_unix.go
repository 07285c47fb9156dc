//go:build unix

package ipc

import (
	"errors"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// tryWriter returns a function that writes as much as the socket takes
// right now, without blocking, with one vectored write; or nil when the
// connection has no descriptor to write to (TLS, in-memory pipes). The
// function is called by one goroutine at a time (the outbox's writer).
func tryWriter(c net.Conn) func([][]byte) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &fdWriter{raw: raw}
	w.fn = w.write
	return w.try
}

// fdWriter does non-blocking vectored writes without allocating.
type fdWriter struct {
	raw syscall.RawConn
	fn  func(uintptr) bool
	iov [][]byte
	n   int
	err error
}

// write is called by RawConn.Write with the descriptor; returning true
// ends the Write at once, whatever happened, so nobody waits for the
// socket to drain.
func (w *fdWriter) write(fd uintptr) bool {
	for {
		w.n, w.err = unix.Writev(int(fd), w.iov)
		if w.err != unix.EINTR {
			return true
		}
	}
}

func (w *fdWriter) try(iov [][]byte) (int, error) {
	w.iov = iov
	err := w.raw.Write(w.fn)
	w.iov = nil
	switch {
	case err != nil:
		return 0, err
	case errors.Is(w.err, unix.EAGAIN):
		return 0, nil
	case w.err != nil:
		return 0, w.err
	}
	return w.n, nil
}
