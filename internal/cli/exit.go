package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/rpc"
)

// Exit statuses of the procxy command (see ExitCode).
const (
	ExitOK          = 0   // success
	ExitFailure     = 1   // the command failed
	ExitUsage       = 2   // a bad command line or input
	ExitRemote      = 3   // the worker's method returned an error
	ExitWorker      = 4   // the worker could not be started, is not a Procwire worker, or died
	ExitTimeout     = 5   // a call ran out of time
	ExitInterrupted = 130 // Ctrl-C (SIGINT) or SIGTERM, as shells report SIGINT
)

// UsageError reports a command line, or input, that procxy cannot use.
// Its message is one line that says what was wrong.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// interruptedError is the error of a command whose ctx was cancelled
// (a signal): whatever the command was doing was cut short.
type interruptedError struct{ err error }

func (e *interruptedError) Error() string {
	if errors.Is(e.err, context.Canceled) {
		return "interrupted"
	}
	return "interrupted: " + e.err.Error()
}
func (e *interruptedError) Unwrap() error { return e.err }

// workerError is a worker that could not be started or that failed; its
// message is one line for a person.
type workerError struct {
	msg string
	err error
}

func (e *workerError) Error() string { return e.msg }
func (e *workerError) Unwrap() error { return e.err }

// ExitCode is the process exit status for an error returned by Run:
//
//	0    nil
//	1    any other failure
//	2    a *UsageError: bad flags or arguments, an unknown method, input
//	     that does not fit the method's codec
//	3    the worker's method returned an error (an *rpc.RemoteError)
//	4    the worker could not be started, is not a Procwire worker, or died
//	5    a call ran out of time
//	130  interrupted: Run's ctx was cancelled (Ctrl-C)
func ExitCode(err error) int {
	var (
		ue *UsageError
		ie *interruptedError
		re *rpc.RemoteError
		we *workerError
	)
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &ie):
		return ExitInterrupted
	case errors.As(err, &re):
		return ExitRemote
	case errors.Is(err, host.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return ExitTimeout
	case errors.As(err, &we), errors.Is(err, rpc.ErrClosed), errors.As(err, new(*host.ExitError)),
		errors.As(err, new(*host.SpawnError)), errors.Is(err, host.ErrNotReady):
		return ExitWorker
	}
	return ExitFailure
}
