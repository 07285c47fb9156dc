package childproc

import (
	"context"
	"errors"
	"syscall"
)

// SyncResult is what SpawnSync returns (Node's spawnSync result, without
// the redundant output array).
type SyncResult struct {
	PID            int    // 0 when the child did not start
	Stdout, Stderr []byte // captured output of Pipe streams, after Options.Encoding; nil otherwise
	// Status is the exit status, or -1 when a signal ended the child or it
	// did not start (Node's null).
	Status int
	Signal syscall.Signal // the signal that ended the child, or 0 (Node's null)
}

// SpawnSync runs file with args, waits for it and returns its result
// (Node's spawnSync). Stdio follows Options (Pipe by default: captured),
// and Input is written to stdin when it is a pipe.
//
// As in Node, a non-zero exit is not an error. The error reports what
// Node puts in result.error: a *SpawnError for a failed start, or with
// errno ETIMEDOUT (matching ErrTimeout) when Timeout fired and ENOBUFS
// (matching ErrMaxBuffer) when output passed MaxBuffer; the *ExitError
// when ctx ended the child. Unlike Node, output is cut at exactly
// MaxBuffer bytes.
func SpawnSync(ctx context.Context, file string, args []string, opts Options) (SyncResult, error) {
	r := resolve(opts)
	res, err := runSync(ctx, file, args, r)
	return res.result(r.Encoding), err
}

// ExecSync runs command with the shell, waits for it and returns its
// stdout (Node's execSync). It fails with an *ExecError when the command
// could not start, exited non-zero, was killed, or passed MaxBuffer; the
// error carries stdout and stderr. Stdio follows Options (Pipe by
// default); unlike Node, stderr is not also copied to the parent's stderr
// unless Options.Stderr is Inherit.
func ExecSync(ctx context.Context, command string, opts Options) ([]byte, error) {
	r := resolve(opts)
	shell := r.Shell
	if shell == "" {
		shell = DefaultShell
	}
	r.Shell = ""
	return execSync(ctx, shell, []string{"-c", command}, r, command)
}

// ExecFileSync is ExecSync without a shell (Node's execFileSync).
func ExecFileSync(ctx context.Context, file string, args []string, opts Options) ([]byte, error) {
	return execSync(ctx, file, args, resolve(opts), joinCmd(file, args))
}

func execSync(ctx context.Context, file string, args []string, r resolved, cmd string) ([]byte, error) {
	raw, err := runSync(ctx, file, args, r)
	res := raw.result(r.Encoding)
	if err == nil {
		err = raw.exitErr
	}
	if err != nil {
		return res.Stdout, &ExecError{Cmd: cmd, Stdout: res.Stdout, Stderr: res.Stderr, Err: err}
	}
	return res.Stdout, nil
}

// runSync runs the child and turns timeout and maxBuffer into Node's
// spawnSync errors.
func runSync(ctx context.Context, file string, args []string, r resolved) (runResult, error) {
	r.IPC = false
	res, err := run(ctx, file, args, r, "spawnSync")
	if err != nil {
		return res, err
	}
	var errno syscall.Errno
	switch {
	case errors.Is(res.cause, ErrTimeout):
		errno = syscall.ETIMEDOUT
	case errors.Is(res.cause, ErrMaxBuffer):
		errno = syscall.ENOBUFS
	case res.cause != nil:
		return res, res.exitErr
	default:
		return res, nil
	}
	return res, newSpawnError("spawnSync", file, args, res.exitErr).withErrno(errno)
}

func (res runResult) result(enc Encoding) SyncResult {
	out := SyncResult{PID: res.pid, Status: res.code, Signal: res.signal}
	if res.stdout != nil {
		out.Stdout = enc.apply(res.stdout)
	}
	if res.stderr != nil {
		out.Stderr = enc.apply(res.stderr)
	}
	return out
}

func (e *SpawnError) withErrno(errno syscall.Errno) *SpawnError {
	e.Errno = errno
	return e
}
