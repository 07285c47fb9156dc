package transport

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// ErrPathTooLong is returned (wrapped) for a Unix socket path longer than the
// OS allows in a sockaddr_un: about 107 bytes on Linux and 103 on macOS.
var ErrPathTooLong = errors.New("transport: unix socket path too long")

// UnixListener is a listening Unix socket that owns its socket file. It is
// safe for concurrent use. Create one with [ListenPrivate] or [ListenUnix];
// the zero value is not usable.
type UnixListener struct {
	ln   *net.UnixListener
	path string

	closeOnce sync.Once
	closeErr  error // set once by the first Close
}

var _ net.Listener = (*UnixListener)(nil)

// ListenPrivate listens on a new socket in [SocketDir] named
// "<prefix>-<pid>-<16 random hex digits>.sock", with mode 0600. The name
// carries 64 random bits from crypto/rand, so it cannot be guessed; the 0700
// directory already keeps other users out. An empty prefix means "procxy"; a
// prefix must not contain a path separator.
func ListenPrivate(prefix string) (*UnixListener, error) {
	if prefix == "" {
		prefix = "procxy"
	}
	if strings.ContainsRune(prefix, '/') || strings.ContainsRune(prefix, os.PathSeparator) {
		return nil, fmt.Errorf("transport: listen private: prefix %q contains a path separator", prefix)
	}
	dir, err := SocketDir()
	if err != nil {
		return nil, err
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:]) // never fails, see crypto/rand.Read
	name := prefix + "-" + strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(rnd[:]) + ".sock"
	path := filepath.Join(dir, name)
	if err := checkPath(path); err != nil {
		return nil, fmt.Errorf("transport: listen private: %w", err)
	}
	// No stale-file check: the name is fresh, so an existing file means
	// something is wrong, and bind reports it as "address already in use".
	return listenUnix(path)
}

// ListenUnix listens on the Unix socket at path and sets the socket file's
// mode to 0600. The file's directory is the caller's business: prefer a
// directory only the current user can enter, such as [SocketDir], since the
// file briefly has the umask's mode between bind and chmod.
//
// If a socket file already exists at path, ListenUnix dials it using ctx: it
// removes the file only if the dial is refused (a stale socket left by a
// process that died) and fails if something answers. It never removes a file
// that is not a socket. A path starting with '@' names a Linux abstract
// socket, which has no file. [UnixListener.Close] removes the socket file.
func ListenUnix(ctx context.Context, path string) (*UnixListener, error) {
	if err := checkPath(path); err != nil {
		return nil, fmt.Errorf("transport: listen unix: %w", err)
	}
	if !isAbstract(path) {
		if err := removeStale(ctx, path); err != nil {
			return nil, fmt.Errorf("transport: listen unix %s: %w", path, err)
		}
	}
	return listenUnix(path)
}

// removeStale removes a socket file at path that nobody listens on.
func removeStale(ctx context.Context, path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("file exists and is not a socket (mode %v): %w", fi.Mode(), fs.ErrExist)
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	switch {
	case err == nil:
		c.Close()
		return fmt.Errorf("a process is listening there: %w", syscall.EADDRINUSE)
	case errors.Is(err, syscall.ECONNREFUSED):
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale socket: %w", err)
		}
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return nil // removed since the Lstat
	default:
		// Busy (EAGAIN), not ours (EACCES) or ctx done: leave the file alone.
		return fmt.Errorf("probe existing socket: %w", err)
	}
}

func listenUnix(path string) (*UnixListener, error) {
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	if !isAbstract(path) {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, errors.Join(fmt.Errorf("transport: listen unix %s: %w", path, err), ln.Close())
		}
	}
	return &UnixListener{ln: ln, path: path}, nil
}

// Accept waits for and returns the next connection, a *[net.UnixConn].
// After Close it returns an error wrapping [net.ErrClosed].
func (l *UnixListener) Accept() (net.Conn, error) {
	c, err := l.ln.AcceptUnix()
	if err != nil {
		return nil, err // not c: a nil *UnixConn would make a non-nil net.Conn
	}
	return c, nil
}

// AcceptUnix is Accept returning the concrete type, for [PeerCred].
func (l *UnixListener) AcceptUnix() (*net.UnixConn, error) { return l.ln.AcceptUnix() }

// Addr returns the listener's address; its String method returns [UnixListener.Path].
func (l *UnixListener) Addr() net.Addr { return l.ln.Addr() }

// Path returns the socket's path.
func (l *UnixListener) Path() string { return l.path }

// Close stops listening and removes the socket file. It does not block and
// does not close connections already accepted. Close is idempotent: every
// call returns the first call's result.
func (l *UnixListener) Close() error {
	l.closeOnce.Do(func() {
		if err := l.ln.Close(); err != nil {
			l.closeErr = fmt.Errorf("transport: %w", err)
		}
	})
	return l.closeErr
}

// checkPath returns an error wrapping ErrPathTooLong if path does not fit in
// a sockaddr_un.
func checkPath(path string) error {
	if path == "" {
		return errors.New("empty socket path")
	}
	if len(path) > maxPathLen {
		return fmt.Errorf("%q is %d bytes, the limit is %d: %w", path, len(path), maxPathLen, ErrPathTooLong)
	}
	return nil
}

// isAbstract reports whether path names a Linux abstract socket.
func isAbstract(path string) bool { return runtime.GOOS == "linux" && path[0] == '@' }
