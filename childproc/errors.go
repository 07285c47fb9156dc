package childproc

import (
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"syscall"
)

// Sentinel errors. Each is returned wrapped, so test with errors.Is.
var (
	// ErrTimeout is the Cause of an *ExitError when Options.Timeout fired.
	// The blocking functions report it inside a *SpawnError with errno
	// ETIMEDOUT, as Node's spawnSync does.
	ErrTimeout = errors.New("childproc: timed out")

	// ErrMaxBuffer is matched by every *MaxBufferError.
	ErrMaxBuffer = errors.New("childproc: maxBuffer length exceeded")

	// ErrDisconnected is returned by Send after the IPC channel was
	// disconnected by either side (Node's ERR_IPC_CHANNEL_CLOSED), and by a
	// second Disconnect (Node's ERR_IPC_DISCONNECTED).
	ErrDisconnected = errors.New("childproc: IPC channel disconnected")

	// ErrProtocol means the peer wrote something that is not a Node IPC
	// message: a line that is not JSON, an empty line, or a line longer than
	// the limit. The channel is closed; [Channel.Err] returns the details.
	ErrProtocol = errors.New("childproc: IPC protocol violation")

	// ErrMessageTooLarge means a message exceeds Options.MaxMessageSize.
	// Incoming, it ends the channel (and also matches ErrProtocol);
	// outgoing, Send refuses the message and the channel stays usable.
	ErrMessageTooLarge = errors.New("childproc: IPC message too large")

	// ErrInternalMessage is returned by Send for an object whose "cmd" is a
	// string longer than 5 bytes starting with "NODE_". Node reserves those
	// for itself: it swallows them, and some (an unsolicited
	// NODE_HANDLE_ACK) crash it.
	ErrInternalMessage = errors.New("childproc: message cmd starting with NODE_ is reserved for Node.js")

	// ErrNoProcessGroup is returned by KillGroup for a child that was not
	// started with Options.ProcessGroup, Detached or KillGroup: its process
	// group is the parent's own.
	ErrNoProcessGroup = errors.New("childproc: child has no process group of its own")

	// ErrInvalidArgument reports a call that cannot start a process: an
	// empty program name, or a NUL byte in the name, an argument, Argv0 or
	// the environment (Node's ERR_INVALID_ARG_VALUE).
	ErrInvalidArgument = errors.New("childproc: invalid argument")

	// ErrUnsupportedSerialization is returned by Parent when the channel
	// uses Node's 'advanced' (V8) serialization; only 'json' is supported.
	ErrUnsupportedSerialization = errors.New("childproc: unsupported IPC serialization mode")
)

// SpawnError is a failure to start a process, shaped like Node's spawn
// error: Error returns "spawn <file> ENOENT", and errors.Is matches the
// errno and its fs equivalents (fs.ErrNotExist for ENOENT, fs.ErrPermission
// for EACCES and EPERM).
type SpawnError struct {
	Syscall string        // "spawn <file>", or "spawnSync <file>" from the blocking functions
	Path    string        // the program as given (Node's path)
	Args    []string      // the arguments, without argv[0] (Node's spawnargs)
	Errno   syscall.Errno // the errno Node reports: ENOENT, EACCES, EPERM, ETIMEDOUT, ENOBUFS, …
	Err     error         // the underlying error, e.g. *fs.PathError for a missing Dir
}

func (e *SpawnError) Error() string {
	s := e.Syscall + " " + e.Code()
	if pe, ok := e.Err.(*fs.PathError); ok && pe.Op == "chdir" {
		s += " (chdir " + pe.Path + ")"
	}
	return s
}

// Code returns the errno's name, such as "ENOENT" (Node's err.code).
func (e *SpawnError) Code() string { return errnoName(e.Errno) }

// Unwrap returns the underlying error.
func (e *SpawnError) Unwrap() error { return e.Err }

// Is matches the errno and what the errno matches (fs.ErrNotExist, …).
func (e *SpawnError) Is(target error) bool {
	return e.Errno != 0 && (target == error(e.Errno) || e.Errno.Is(target))
}

// ExitError reports a child that did not exit with status 0, or that
// childproc killed (timeout, context, MaxBuffer). Wait and the exec
// functions return it.
type ExitError struct {
	PID    int
	Code   int            // exit status, or -1 when a signal ended the child (Node's null)
	Signal syscall.Signal // the signal that ended the child, or 0 (Node's null)
	// Killed reports that childproc delivered a signal to the child, by
	// Kill, KillGroup or an automatic kill. As in Node it does not mean the
	// signal ended the child.
	Killed bool
	// Cause says why childproc killed the child: ErrTimeout, a
	// *MaxBufferError, or the context's cause. Nil when it did not.
	Cause error
}

func (e *ExitError) Error() string {
	var s string
	if e.Code >= 0 {
		s = "exit status " + strconv.Itoa(e.Code)
	} else {
		s = "signal " + signalName(e.Signal)
	}
	if e.Cause != nil {
		return e.Cause.Error() + " (" + s + ")"
	}
	return s
}

// Unwrap returns Cause.
func (e *ExitError) Unwrap() error { return e.Cause }

// MaxBufferError reports output past Options.MaxBuffer. It matches ErrMaxBuffer.
type MaxBufferError struct {
	Stream string // "stdout" or "stderr"
	Limit  int
}

func (e *MaxBufferError) Error() string { return e.Stream + " maxBuffer length exceeded" }

// Is reports whether target is ErrMaxBuffer.
func (e *MaxBufferError) Is(target error) bool { return target == ErrMaxBuffer }

// ExecError is the error of Exec, ExecFile, ExecSync and ExecFileSync: it
// carries the command and the output so far, and wraps a *SpawnError (the
// process did not start) or an *ExitError (it failed or was killed).
type ExecError struct {
	Cmd    string // the program and its arguments joined by spaces (Node's err.cmd)
	Stdout []byte // output so far, after Options.Encoding
	Stderr []byte
	Err    error
}

// Error returns Node's message, "Command failed: <cmd>", followed by the
// reason and, on a new line, stderr.
func (e *ExecError) Error() string {
	var b strings.Builder
	b.WriteString("Command failed: ")
	b.WriteString(e.Cmd)
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if len(e.Stderr) > 0 {
		b.WriteByte('\n')
		b.Write(e.Stderr)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *ExecError) Unwrap() error { return e.Err }
