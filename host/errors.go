package host

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/procxy/procxy/childproc"
	"github.com/procxy/procxy/internal/errid"
	"github.com/procxy/procxy/internal/supervise"
	"github.com/procxy/procxy/rpc"
)

// Sentinel errors. Each is returned wrapped, so test with errors.Is.
var (
	// ErrNotReady is returned by calls on a module that is not ready:
	// never spawned, starting, restarting, shut down or failed.
	ErrNotReady = errors.New("host: module not ready")
	// ErrBusy is returned by Spawn while the module is starting or stopping.
	ErrBusy = errors.New("host: module busy")
	// ErrUnknownMethod is returned for a method or event name the module's
	// Config does not declare, or its child did not announce. It matches
	// rpc.ErrUnknownMethod, as procxy.ErrUnknownMethod does.
	ErrUnknownMethod error = errid.Also("host: method not declared", rpc.ErrUnknownMethod)
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
	// ErrInitTimeout means the child sent no $init within Policy.StartTimeout.
	ErrInitTimeout = errors.New("host: no $init in time")
	// ErrBadInit means the child's $init line is malformed.
	ErrBadInit = errors.New("host: malformed $init")
	// ErrTooManyRestarts means a crash found the restart budget spent.
	ErrTooManyRestarts = errors.New("host: too many restarts, giving up")
	// ErrRecycled is matched by the end of a child that Config.Recycle
	// replaced; the error says why. It is procxy.ErrRecycled.
	ErrRecycled = supervise.ErrRecycled
	// ErrDuplicate is returned by Manager.Register for a name already taken.
	ErrDuplicate = errors.New("host: duplicate module name")
)

// ExitError reports that a module's child process exited: its status or
// signal, why the module killed it (Cause: a missed heartbeat, a lost data
// channel, a Recycle policy), a resource limit or OOM kill that ended it
// (Reason), its panic report and last stderr lines. Calls that were pending
// when it died fail with an error that wraps it (and rpc.ErrClosed). It is
// childproc's type, which package procxy uses too.
type ExitError = childproc.ExitError

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
	if st == StateStopping {
		return fmt.Errorf("%w: module %q is %v: %w", ErrNotReady, name, st, ErrShutdown)
	}
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
