package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"
)

// Sentinel errors. Each is returned wrapped, so test with errors.Is.
var (
	// ErrNotReady is returned by calls on a module that is not ready:
	// never spawned, starting, restarting, shut down or failed.
	ErrNotReady = errors.New("host: module not ready")
	// ErrBusy is returned by Spawn while the module is starting or stopping.
	ErrBusy = errors.New("host: module busy")
	// ErrUnknownMethod is returned for a method or event name the module's
	// Config does not declare.
	ErrUnknownMethod = errors.New("host: method not declared")
	// ErrWrongKind is returned when the call does not fit the method's kind
	// (Call on a stream method, Stream on a result method, …).
	ErrWrongKind = errors.New("host: wrong call for the method's kind")
	// ErrTimeout is matched by the error of a call that ran out of its
	// request timeout; that error also matches context.DeadlineExceeded.
	ErrTimeout = errors.New("host: request timed out")
	// ErrShutdown is the error of calls that were pending when the module
	// was shut down.
	ErrShutdown = errors.New("host: module shut down")
	// ErrHeartbeat means the child did not answer a $ping in time and was killed.
	ErrHeartbeat = errors.New("host: missed heartbeat")
	// ErrConnLost means the data channel closed while the child was still
	// running; the child was killed, so the restart policy applies.
	ErrConnLost = errors.New("host: lost the data channel while the process was running")
	// ErrInitFailed means the child sent $error instead of $init.
	ErrInitFailed = errors.New("host: child reported an init error")
	// ErrInitTimeout means the child sent no $init within Policy.InitTimeout.
	ErrInitTimeout = errors.New("host: no $init in time")
	// ErrBadInit means the child's $init line is malformed.
	ErrBadInit = errors.New("host: malformed $init")
	// ErrTooManyRestarts means a crash found the restart budget spent.
	ErrTooManyRestarts = errors.New("host: too many restarts, giving up")
	// ErrDuplicate is returned by Manager.Register for a name already taken.
	ErrDuplicate = errors.New("host: duplicate module name")
)

// ExitError reports that a module's child process exited. Calls that were
// pending when it died fail with an error that wraps it (and rpc.ErrClosed).
type ExitError struct {
	Module string
	PID    int
	Code   int            // exit status, or -1 when a signal ended the process
	Signal syscall.Signal // the signal that ended it, or 0
	Stderr []string       // the last lines the child wrote to stderr (at most 5)
}

func (e *ExitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "host: module %q (pid %d) ", e.Module, e.PID)
	if e.Signal != 0 {
		fmt.Fprintf(&b, "was killed by signal %v", e.Signal)
	} else {
		fmt.Fprintf(&b, "exited with status %d", e.Code)
	}
	if len(e.Stderr) > 0 {
		fmt.Fprintf(&b, " (stderr: %q)", strings.Join(e.Stderr, " | "))
	}
	return b.String()
}

// SpawnError reports that a spawn gave up after its retries.
type SpawnError struct {
	Module   string
	Attempts int
	Err      error // the last attempt's failure
}

func (e *SpawnError) Error() string {
	return fmt.Sprintf("host: failed to spawn module %q after %d attempt(s): %v", e.Module, e.Attempts, e.Err)
}

func (e *SpawnError) Unwrap() error { return e.Err }

// SchemaError reports every difference between the module's Config and the
// schema in the child's $init. It is permanent: the spawn is not retried.
type SchemaError struct {
	Module string
	Diffs  []SchemaDiff
}

// SchemaDiff is one difference between the Config and the child's schema.
type SchemaDiff struct {
	What   string // "method" or "event"
	Name   string
	Parent string // what the parent declared: a response kind, or "" for an event
	Child  string // what the child announced: a response kind, "" when missing, or a problem
}

func (d SchemaDiff) String() string {
	switch {
	case d.Child == "":
		return fmt.Sprintf("child did not register expected %s %q", d.What, d.Name)
	case d.Parent == "":
		return fmt.Sprintf("%s %q: %s", d.What, d.Name, d.Child)
	}
	return fmt.Sprintf("%s %q response type mismatch (parent declared %q, child declared %q)", d.What, d.Name, d.Parent, d.Child)
}

func (e *SchemaError) Error() string {
	parts := make([]string, len(e.Diffs))
	for i, d := range e.Diffs {
		parts[i] = d.String()
	}
	return fmt.Sprintf("host: module %q: $init schema does not match the config: %s", e.Module, strings.Join(parts, "; "))
}

// notReady builds the error for a call on a module that is not ready.
func notReady(name string, st State, last error) error {
	if last != nil {
		return fmt.Errorf("%w: module %q is %v (last error: %w)", ErrNotReady, name, st, last)
	}
	return fmt.Errorf("%w: module %q is %v", ErrNotReady, name, st)
}

// timeoutError is the cause attached to a call's timeout context.
func timeoutError(module, method string, d time.Duration) error {
	return &callTimeout{module: module, method: method, d: d}
}

type callTimeout struct {
	module, method string
	d              time.Duration
}

func (e *callTimeout) Error() string {
	return fmt.Sprintf("host: module %q: timeout waiting for response from %q after %v", e.module, e.method, e.d)
}

// Is makes the error match both ErrTimeout and context.DeadlineExceeded.
func (e *callTimeout) Is(target error) bool {
	return target == ErrTimeout || target == context.DeadlineExceeded
}
