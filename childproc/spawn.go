package childproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// Spawn starts file with args (Node's spawn): no shell unless
// Options.Shell is set, stdio pipes by default, no buffering. The program
// is looked up in the PATH of the child's environment.
//
// When ctx is done before the child exits, the child gets KillSignal and
// Wait reports the context's cause (Node's signal option); a ctx that is
// already done starts nothing. Spawn errors are *SpawnError (ENOENT,
// EACCES, EPERM, …) or wrap ErrInvalidArgument.
func Spawn(ctx context.Context, file string, args []string, opts Options) (*Child, error) {
	return start(ctx, file, args, resolve(opts), startConfig{stdio: stdioPipe, syscall: "spawn"})
}

// Fork starts a Node.js script with an IPC channel (Node's fork): it runs
// Options.ExecPath (default "node") with Options.ExecArgv, modulePath and
// args, stdio inherited by default, and NODE_CHANNEL_FD set. Talk to the
// child through [Child.Channel].
//
// To start a program that is not a Node script, such as a Go program that
// calls [Parent], use Spawn with Options.IPC: Fork would pass modulePath as
// its first argument.
func Fork(ctx context.Context, modulePath string, args []string, opts Options) (*Child, error) {
	r := resolve(opts)
	exe := r.ExecPath
	if exe == "" {
		exe = DefaultExecPath
	}
	argv := make([]string, 0, len(r.ExecArgv)+1+len(args))
	argv = append(append(append(argv, r.ExecArgv...), modulePath), args...)
	r.IPC = true
	r.Shell = ""
	return start(ctx, exe, argv, r, startConfig{stdio: stdioInherit, syscall: "spawn"})
}

type startConfig struct {
	stdio   stdioMode // what a zero Stdio means
	syscall string    // "spawn" or "spawnSync", for SpawnError.Syscall
	// closePipesOnKill closes the output pipes when childproc kills the
	// child, as Node's exec destroys its streams.
	closePipesOnKill bool
}

// start does the work of every function: it validates, resolves the
// program, opens stdio, creates the IPC channel, starts the process and
// its waiter.
func start(ctx context.Context, file string, args []string, r resolved, cfg startConfig) (*Child, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("childproc: %s %s: %w", cfg.syscall, file, context.Cause(ctx))
	}
	if err := validate(file, args, &r); err != nil {
		return nil, err
	}
	if r.Shell != "" { // as Node: joined with spaces, no quoting
		args = []string{"-c", strings.Join(append([]string{file}, args...), " ")}
		file = r.Shell
	}
	spawnErr := func(err error) *SpawnError { // Node names the shell when there is one
		return newSpawnError(cfg.syscall, file, args, err)
	}
	if r.IPC && !ipcSupported {
		return nil, spawnErr(errors.ErrUnsupported)
	}
	ipcFD := -1
	if r.IPC {
		ipcFD = 3 + len(r.ExtraFiles)
	}
	env := childEnv(r.Env, ipcFD)
	if r.Dir != "" {
		if fi, err := os.Stat(r.Dir); err != nil {
			return nil, spawnErr(&os.PathError{Op: "chdir", Path: r.Dir, Err: errnoOf(err)})
		} else if !fi.IsDir() {
			return nil, spawnErr(&os.PathError{Op: "chdir", Path: r.Dir, Err: syscall.ENOTDIR})
		}
	}
	path, err := lookPath(file, r.Dir, env)
	if err != nil {
		return nil, spawnErr(err)
	}
	attr, err := sysProcAttr(&r)
	if err != nil {
		return nil, err
	}
	argv0 := file
	if r.Argv0 != "" {
		argv0 = r.Argv0
	}
	argv := append([]string{argv0}, args...)

	c := &Child{
		spawnFile:  file,
		spawnArgs:  argv,
		ownGroup:   r.ProcessGroup || r.Detached,
		killSignal: r.killSignal,
		killGroup:  r.KillGroup,
		stopGrace:  r.StopGrace,
		exited:     make(chan struct{}),
		done:       make(chan struct{}),
		open:       1, // the process
	}
	var stdio stdioFiles
	defer stdio.closeChildEnds()
	files, err := stdio.open(c, &r, cfg.stdio)
	if err != nil {
		stdio.closeParentEnds()
		return nil, spawnErr(err)
	}
	files = append(files, r.ExtraFiles...)
	var ipc net.Conn
	if r.IPC {
		pc, cf, err := socketpair()
		if err != nil {
			stdio.closeParentEnds()
			return nil, spawnErr(err)
		}
		stdio.childEnds = append(stdio.childEnds, cf)
		files = append(files, cf)
		ipc = pc
	}
	proc, reaped, err := startProcess(path, argv, &os.ProcAttr{Dir: r.Dir, Env: env, Files: files, Sys: attr}, &r)
	if err != nil {
		stdio.closeParentEnds()
		if ipc != nil {
			ipc.Close()
		}
		if se, ok := err.(setupError); ok {
			return nil, se.error
		}
		return nil, spawnErr(err)
	}
	c.proc, c.reaped = proc, reaped
	if ipc != nil {
		c.open++
		c.channel = newChannel(ipc, r.maxMessage, c.release)
	}
	c.pid = c.proc.Pid
	if cfg.closePipesOnKill {
		c.onKill = c.closePipes
	}
	if r.Timeout > 0 {
		c.addTimer(time.AfterFunc(r.Timeout, func() { c.killFor(ErrTimeout) }).Stop)
	}
	if ctx.Done() != nil {
		c.addTimer(context.AfterFunc(ctx, func() { c.killFor(context.Cause(ctx)) }))
	}
	c.wg.Go(c.waitProcess)
	return c, nil
}

// setupError is a failure to apply Limits or NoNewPrivs around a start
// that itself worked: Spawn returns the error inside, not a *SpawnError.
type setupError struct{ error }

func (e setupError) Unwrap() error { return e.error }

// closePipes closes the parent's ends of the output pipes.
func (c *Child) closePipes() {
	for _, p := range []*outPipe{c.stdout, c.stderr} {
		if p != nil {
			p.Close()
		}
	}
}

// stdioFiles tracks the fds opened for the child's stdio.
type stdioFiles struct {
	childEnds  []*os.File // closed in the parent once the child has them
	parentEnds []*os.File // closed again if the start fails
}

// open returns the child's fds 0–2 and sets the Child's pipes.
func (s *stdioFiles) open(c *Child, r *resolved, def stdioMode) ([]*os.File, error) {
	files := make([]*os.File, 3)
	for fd, st := range []Stdio{r.Stdin, r.Stdout, r.Stderr} {
		switch st.or(def) {
		case stdioPipe:
			pr, pw, err := os.Pipe()
			if err != nil {
				return nil, err
			}
			if fd == 0 {
				files[0] = pr
				s.childEnds = append(s.childEnds, pr)
				s.parentEnds = append(s.parentEnds, pw)
				c.stdin = pw
				continue
			}
			files[fd] = pw
			s.childEnds = append(s.childEnds, pw)
			s.parentEnds = append(s.parentEnds, pr)
			p := &outPipe{f: pr, child: c}
			if fd == 1 {
				c.stdout = p
			} else {
				c.stderr = p
			}
		case stdioInherit:
			files[fd] = []*os.File{os.Stdin, os.Stdout, os.Stderr}[fd]
		case stdioIgnore:
			flag := os.O_WRONLY
			if fd == 0 {
				flag = os.O_RDONLY
			}
			f, err := os.OpenFile(os.DevNull, flag, 0)
			if err != nil {
				return nil, err
			}
			files[fd] = f
			s.childEnds = append(s.childEnds, f)
		case stdioFile:
			files[fd] = st.file
		}
	}
	return files, nil
}

func (s *stdioFiles) closeChildEnds() {
	for _, f := range s.childEnds {
		f.Close()
	}
}

func (s *stdioFiles) closeParentEnds() {
	for _, f := range s.parentEnds {
		f.Close()
	}
}

// newSpawnError shapes a start failure like Node's spawn error.
func newSpawnError(syscallName, file string, args []string, err error) *SpawnError {
	return &SpawnError{
		Syscall: syscallName + " " + file,
		Path:    file,
		Args:    append([]string(nil), args...),
		Errno:   errnoOf(err),
		Err:     err,
	}
}

// errnoOf returns the errno inside err, or EINVAL when there is none.
func errnoOf(err error) syscall.Errno {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	if errors.Is(err, errors.ErrUnsupported) {
		return syscall.ENOSYS
	}
	return syscall.EINVAL
}

func isErrno(err error, errno syscall.Errno) bool { return errors.Is(err, errno) }
