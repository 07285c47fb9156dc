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
// functions return it. It is also the one exit error of the packages that
// supervise children (procxy and host alias it): they set Name, Reason,
// Panic, Stderr and Err, and its message then names the child and says why
// it ended.
type ExitError struct {
	PID    int
	Code   int            // exit status, or -1 when a signal ended the child (Node's null)
	Signal syscall.Signal // the signal that ended the child, or 0 (Node's null)
	// Killed reports that childproc delivered a signal to the child, by
	// Kill, KillGroup or an automatic kill. As in Node it does not mean the
	// signal ended the child.
	Killed bool
	// Cause says why the child was killed: ErrTimeout, a *MaxBufferError,
	// the context's cause, or a supervisor's reason (a recycling policy, a
	// missed heartbeat). Nil when nobody killed it on purpose.
	Cause error

	// Name is how the message names a supervised child, such as
	// "procxy: child example.com/app.Calculator" or `host: module "calc"`;
	// empty for childproc's own errors.
	Name string
	// Reason explains an end the child did not choose, when it can be told:
	// a resource limit it ran into ("CPU time limit (Limits.CPUTime 2s)
	// reached") or the kernel's OOM killer. Empty otherwise.
	Reason string
	// Panic is the Go panic or fatal error report on the child's stderr,
	// from its "panic: " or "fatal error: " line on (bounded).
	Panic string
	// Stderr holds the child's last stderr lines, oldest first.
	Stderr []string
	// Err is one more error the exit matches with errors.Is and errors.As:
	// for a supervised child, the connection's rpc.ErrClosed.
	Err error
}

func (e *ExitError) Error() string {
	var s string
	if e.Code >= 0 {
		s = "exit status " + strconv.Itoa(e.Code)
	} else {
		s = "signal " + signalName(e.Signal)
	}
	if e.Name == "" {
		if e.Cause != nil {
			return e.Cause.Error() + " (" + s + ")"
		}
		return s
	}
	var b strings.Builder
	b.WriteString(e.Name)
	b.WriteString(" (pid ")
	b.WriteString(strconv.Itoa(e.PID))
	if e.Code >= 0 {
		b.WriteString(") exited with status ")
		b.WriteString(strconv.Itoa(e.Code))
	} else {
		b.WriteString(") was killed by signal ")
		b.WriteString(e.Signal.String())
	}
	if e.Cause != nil {
		b.WriteString(": ")
		b.WriteString(e.Cause.Error())
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	if e.Panic != "" {
		first, _, _ := strings.Cut(e.Panic, "\n")
		b.WriteString(": ")
		b.WriteString(first)
	} else if n := len(e.Stderr); n > 0 {
		b.WriteString("; last stderr: ")
		b.WriteString(strings.Join(e.Stderr[max(0, n-messageLines):], " | "))
	}
	return b.String()
}

// messageLines is how many of the last stderr lines the message of a
// supervised child's ExitError shows (Stderr keeps more).
const messageLines = 5

// Unwrap returns Cause and Err.
func (e *ExitError) Unwrap() []error {
	switch {
	case e.Cause == nil && e.Err == nil:
		return nil
	case e.Err == nil:
		return []error{e.Cause}
	case e.Cause == nil:
		return []error{e.Err}
	}
	return []error{e.Cause, e.Err}
}

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
