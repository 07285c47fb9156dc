package procxy

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/procxy/procxy/rpc"
)

// RemoteError is an error returned by a method in the child: its message,
// the Go type of the error (Name), an optional Code, and for a panic the
// child's stack. It is the rpc package's type; use errors.As.
type RemoteError = rpc.RemoteError

// Codes of RemoteErrors that procxy itself produces.
const (
	CodeNotRegistered = "not_registered" // the child's executable did not Register the type
	CodeBadArguments  = "bad_arguments"  // wrong number of arguments, or undecodable ones
)

var (
	// ErrClosed is returned by calls on a proxy after Close or Kill.
	ErrClosed = errors.New("procxy: proxy closed")
	// ErrUnknownMethod is returned for a method the type does not have.
	ErrUnknownMethod = errors.New("procxy: unknown method")
	// ErrNotAttached is returned by Emitter.Emit outside a child process.
	ErrNotAttached = errors.New("procxy: emitter is not attached to a parent")
	// ErrNoMain means a child process ran without procxy.Main: it never answered.
	ErrNoMain = errors.New("procxy: the child did not start serving; is procxy.Main() the first statement of main (and TestMain)?")
)

// ExitError reports a child process that ended while the proxy was open.
// Calls pending at that moment, and calls made after it, fail with it; it
// also matches rpc.ErrClosed with errors.Is.
type ExitError struct {
	Key      string    // the registered type
	PID      int       // the child's process id
	ExitCode int       // the exit status, or -1 if a signal ended the child
	Signal   os.Signal // the signal that ended the child, or nil
	Panic    string    // the child's panic message and stack, if it panicked
	Stderr   []string  // the child's last stderr lines
	Err      error     // from os/exec
}

func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "procxy: child %s (pid %d) ", e.Key, e.PID)
	if e.Signal != nil {
		fmt.Fprintf(&b, "was killed by signal %v", e.Signal)
	} else {
		fmt.Fprintf(&b, "exited with status %d", e.ExitCode)
	}
	if e.Panic != "" {
		first, _, _ := strings.Cut(e.Panic, "\n")
		fmt.Fprintf(&b, ": %s", first)
	} else if n := len(e.Stderr); n > 0 {
		fmt.Fprintf(&b, "; last stderr: %s", e.Stderr[n-1])
	}
	return b.String()
}

func (e *ExitError) Unwrap() []error { return []error{e.Err, rpc.ErrClosed} }

// exitError builds an ExitError from what childproc reports.
func exitError(key string, pid, code int, sig syscall.Signal, stderr *tail) *ExitError {
	e := &ExitError{Key: key, PID: pid, ExitCode: code, Err: fmt.Errorf("exit status %d", code)}
	if sig != 0 {
		e.Signal, e.ExitCode, e.Err = sig, -1, fmt.Errorf("signal: %v", sig)
	}
	if stderr != nil {
		e.Stderr, e.Panic = stderr.snapshot()
	}
	return e
}
