package childproc

import (
	"context"
	"strings"
	"sync"
	"syscall"
)

// Exec runs command with the shell (Options.Shell, default /bin/sh -c),
// waits for it, and returns its buffered stdout and stderr (Node's exec).
// Output past Options.MaxBuffer (default 1 MiB per stream) is cut, the
// child gets KillSignal and the error wraps a *MaxBufferError. Timeout and
// ctx also send KillSignal. Exec then stops reading the output and waits
// for the child to exit, as Node does.
//
// Any failure is an *ExecError carrying the command and the output so
// far; it wraps a *SpawnError when the shell could not start, or an
// *ExitError with the exit code, signal, Killed and Cause. Stdin is
// Options.Input, or the null device; Options.Stdin, Stdout and Stderr are
// ignored.
func Exec(ctx context.Context, command string, opts Options) (stdout, stderr []byte, err error) {
	r := resolve(opts)
	shell := r.Shell
	if shell == "" {
		shell = DefaultShell
	}
	r.Shell = ""
	return execute(ctx, shell, []string{"-c", command}, r, command)
}

// ExecFile is like Exec without a shell (Node's execFile): it runs file
// with args directly, unless Options.Shell is set. The error's Cmd is file
// and args joined by spaces.
func ExecFile(ctx context.Context, file string, args []string, opts Options) (stdout, stderr []byte, err error) {
	return execute(ctx, file, args, resolve(opts), joinCmd(file, args))
}

func joinCmd(file string, args []string) string {
	return strings.Join(append([]string{file}, args...), " ")
}

func execute(ctx context.Context, file string, args []string, r resolved, cmd string) ([]byte, []byte, error) {
	r.Stdout, r.Stderr = Pipe(), Pipe()
	r.Stdin = Ignore()
	if r.Input != nil {
		r.Stdin = Pipe()
	}
	r.IPC = false
	res, err := run(ctx, file, args, r, "spawn")
	stdout, stderr := r.Encoding.apply(res.stdout), r.Encoding.apply(res.stderr)
	if err == nil {
		err = res.exitErr
	}
	if err != nil {
		return stdout, stderr, &ExecError{Cmd: cmd, Stdout: stdout, Stderr: stderr, Err: err}
	}
	return stdout, stderr, nil
}

// runResult is what run collected from a finished child.
type runResult struct {
	pid            int
	stdout, stderr []byte
	code           int
	signal         syscall.Signal
	cause          error // why childproc killed the child
	exitErr        error // *ExitError, or nil for a clean exit 0
}

// run starts a child, writes Input, collects its piped output within
// MaxBuffer and waits for Done. The error is the start failure.
func run(ctx context.Context, file string, args []string, r resolved, syscallName string) (runResult, error) {
	c, err := start(ctx, file, args, r, startConfig{stdio: stdioPipe, syscall: syscallName, closePipesOnKill: true})
	if err != nil {
		return runResult{code: -1}, err
	}
	pipes := [2]*outPipe{c.stdout, c.stderr}
	for _, p := range pipes {
		if p != nil {
			c.take(p)
		}
	}

	var outs [2][]byte
	var wg sync.WaitGroup
	var overflowMu sync.Mutex
	var overflow error // the first MaxBufferError, even if the child had already exited
	for i, p := range pipes {
		if p == nil {
			continue
		}
		stream := [2]string{"stdout", "stderr"}[i]
		wg.Go(func() {
			outs[i] = collect(p, r.maxBuffer, func() {
				err := &MaxBufferError{Stream: stream, Limit: r.maxBuffer}
				overflowMu.Lock()
				if overflow == nil {
					overflow = err
				}
				overflowMu.Unlock()
				c.killFor(err)
			})
		})
	}
	if in := c.stdin; in != nil {
		if r.Input == nil {
			in.Close()
		} else {
			wg.Go(func() {
				in.Write(r.Input) // fails with EPIPE if the child exits without reading; Node ignores that too
				in.Close()
			})
		}
	}
	wg.Wait()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	res := runResult{pid: c.pid, stdout: outs[0], stderr: outs[1], code: c.code, signal: c.signal, cause: c.cause}
	if res.cause == nil {
		res.cause = overflow // the child exited before it could be killed
	}
	if c.code != 0 || c.signal != 0 || res.cause != nil {
		res.exitErr = &ExitError{PID: c.pid, Code: c.code, Signal: c.signal, Killed: c.killed, Cause: res.cause}
	}
	return res, nil
}

// collect reads p to the end, keeping at most limit bytes (limit < 0: no
// limit). On overflow it keeps exactly limit bytes, calls over and stops.
func collect(p *outPipe, limit int, over func()) []byte {
	var out []byte
	chunk := make([]byte, 32<<10)
	for {
		n, err := p.Read(chunk)
		if n > 0 {
			if limit >= 0 && len(out)+n > limit {
				out = append(out, chunk[:limit-len(out)]...)
				over()
				p.Close()
				return out
			}
			out = append(out, chunk[:n]...)
		}
		if err != nil {
			return out
		}
	}
}
