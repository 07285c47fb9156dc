// Package transport provides the byte streams that procxy's rpc engine runs
// over. It knows nothing of rpc: every transport is a plain [net.Conn] or
// [net.Listener].
//
// # Unix sockets
//
// [ListenPrivate] listens on a socket with an unguessable name in the
// per-user directory returned by [SocketDir] (mode 0700, owned by the
// current user); the socket file itself is mode 0600 and is removed by
// [UnixListener.Close]. [ListenUnix] listens on a path the caller chooses and
// removes a stale socket file there only after a dial to it fails. Both fail
// with [ErrPathTooLong] when the path does not fit in a sockaddr_un. On Linux,
// [PeerCred] reports the user, group and process of the other end.
//
// # Socket pairs for child processes
//
// [Socketpair] returns two connected sockets, both close-on-exec. Hand one to
// a child through [os/exec.Cmd.ExtraFiles] (it becomes fd 3 for the first
// entry), close it in the parent after Start, and wrap the other with
// [FileConn]. The child wraps its inherited descriptor with FileConn too:
//
//	f := os.NewFile(3, "procxy")
//	conn, err := transport.FileConn(f)
//	f.Close() // conn holds its own copy of the descriptor
//
// # TCP and TLS
//
// [ListenTCP] and [DialTCP] are thin wrappers over package net that turn on
// TCP keepalive (and keep Nagle's algorithm off, as Go does by default).
// [Dial] dials "unix" and "tcp" addresses by network name. TLS lives in the
// subpackage tlstransport, so that programs without TLS — every worker and
// child process — do not link crypto/tls and crypto/x509 (about 1 MB of
// binary and 0.6 MiB of resident memory).
//
// # In-memory pipes
//
// [Pipe] returns the two ends of an in-memory connection for tests and
// benchmarks. Unlike [net.Pipe] it buffers: a Write returns as soon as its
// bytes fit in the peer's 256 KiB receive buffer. It supports CloseWrite and
// deadlines and starts no goroutines.
//
// # Platforms
//
// Socket directories, socket pairs and [FileConn] need a Unix system and
// [PeerCred] needs Linux; elsewhere they return an error wrapping
// [errors.ErrUnsupported]. Everything else is portable.
package transport
