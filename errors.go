package procxy

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime"
	"strings"

	"github.com/procxy/procxy/childproc"
	"github.com/procxy/procxy/internal/errid"
	"github.com/procxy/procxy/rpc"
)

// RemoteError is an error returned by a method in the child: its message,
// the Go type of the error (Name), an optional Code, and for a panic the
// child's stack. It is the rpc package's type; use errors.As.
type RemoteError = rpc.RemoteError

// Codes of RemoteErrors that procxy itself produces (rpc's codes, such as
// rpc.CodeBadResult for a result that does not decode, come on top).
const (
	CodeNotRegistered = "not_registered" // the child's executable did not Register the type
	CodeBadArguments  = "bad_arguments"  // wrong number of arguments, or undecodable ones
)

var (
	// ErrClosed is returned by calls on a proxy after Close or Kill. It
	// matches rpc.ErrClosed, as every error of a call that found its
	// connection gone does.
	ErrClosed error = errid.Also("procxy: proxy closed", rpc.ErrClosed)
	// ErrUnknownMethod is returned for a method the type does not have. It
	// matches rpc.ErrUnknownMethod, as a call the peer has no handler for
	// does.
	ErrUnknownMethod error = errid.Also("procxy: unknown method", rpc.ErrUnknownMethod)
	// ErrNotAttached is returned by Emitter.Emit outside a child process.
	ErrNotAttached = errors.New("procxy: emitter is not attached to a parent")
	// ErrNoMain means a child process ran without procxy.Main: it never answered.
	ErrNoMain = errors.New("procxy: the child did not start serving; is procxy.Main() the first statement of main (and TestMain)?")
)

// ExitError reports a child process that ended while the proxy was open:
// its exit status or signal, why it was killed (Cause: a Recycle policy),
// a resource limit or OOM kill that ended it (Reason), its panic report
// and last stderr lines. Calls pending at that moment, and calls made
// after it, fail with it; it matches rpc.ErrClosed with errors.Is. It is
// childproc's type, which package host uses too.
type ExitError = childproc.ExitError

// RegisterError makes errors.Is(err, sentinel) hold for an error that
// crossed a process boundary — returned by a method in a child or on a
// worker, or by an ipc responder — whenever it held where the error was
// returned. The standard library's well-known sentinels (io.EOF,
// io.ErrUnexpectedEOF, fs.ErrNotExist, fs.ErrExist, fs.ErrPermission,
// fs.ErrClosed, context.Canceled, context.DeadlineExceeded,
// os.ErrDeadlineExceeded, net.ErrClosed, errors.ErrUnsupported, …) and
// syscall.Errno are registered already. A sentinel is known on the wire
// by its type and message, so register it in an init function of both
// programs (a child is the same executable, so once is enough). It panics
// if another sentinel has the same type and message.
func RegisterError(sentinel error) { errid.RegisterSentinel(sentinel) }

// RegisterErrorType makes an error of type E that crossed a process
// boundary arrive as an E, so that errors.As finds it: the first E in the
// returned error's tree travels msgpack-encoded (its exported fields, as
// for any value) and is decoded back into an E. Register it in an init
// function of both programs.
func RegisterErrorType[E error]() { errid.RegisterType(reflect.TypeFor[E]()) }

// crossed turns an error that a method (at pc) returned in this process
// into the RemoteError its caller gets: the message, the Go type, where
// it left this process (the function, its file and line, and the error's
// own %+v detail when that adds something, such as a stack recorded where
// the error was made) and the error itself, whose identity travels
// (RegisterError, RegisterErrorType).
func crossed(pc uintptr, err error) error {
	var re *RemoteError
	if errors.As(err, &re) {
		if re.Stack != "" {
			return err
		}
		c := *re // re may be a shared sentinel: do not change it
		c.Stack = crossing(pc, err)
		return &c
	}
	return &RemoteError{Name: fmt.Sprintf("%T", err), Message: err.Error(), Stack: crossing(pc, err), Err: err}
}

// crossing describes where err left this process: the function at pc.
func crossing(pc uintptr, err error) string {
	var b strings.Builder
	if f := runtime.FuncForPC(pc); f != nil {
		file, line := f.FileLine(pc)
		fmt.Fprintf(&b, "error returned by %s in pid %d\n\t%s:%d", f.Name(), os.Getpid(), file, line)
	} else {
		fmt.Fprintf(&b, "error returned in pid %d", os.Getpid())
	}
	if detail := fmt.Sprintf("%+v", err); detail != err.Error() {
		b.WriteString("\n\n" + detail)
	}
	return b.String()
}

// methodError is an error a method returned, as its caller sees it: the
// message names the method; errors.As finds the *RemoteError, and through
// it errors.Is and errors.As find the error's registered identity.
type methodError struct {
	where string // "Calculator.Add", or "Func double"
	re    *RemoteError
}

func (e *methodError) Error() string {
	if e.re.Name == "panic" {
		return "procxy: " + e.where + ": panic: " + e.re.Message
	}
	return "procxy: " + e.where + ": " + e.re.Message
}

func (e *methodError) Unwrap() error { return e.re }

// fromMethod names the method in err when err is the method's own error
// (or a procxy error about its arguments), a *RemoteError; anything else
// is returned as it is.
func fromMethod(key, name string, err error) error {
	re, ok := err.(*RemoteError)
	if !ok {
		return err
	}
	return &methodError{where: typeLabel(key) + "." + name, re: re}
}

// typeLabel is the short name of a type's key: "Calculator" for
// "example.com/app.Calculator".
func typeLabel(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		key = key[i+1:]
	}
	if i := strings.LastIndexByte(key, '.'); i >= 0 && i < len(key)-1 {
		key = key[i+1:]
	}
	return key
}

// argError is the error for arguments that do not fit a method.
func argError(format string, args ...any) *RemoteError {
	return &RemoteError{Code: CodeBadArguments, Name: "ArgumentError", Message: fmt.Sprintf(format, args...)}
}
