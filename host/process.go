package host

import (
	"context"
	"errors"
	"io"
	"os"
	"syscall"

	"github.com/procxy/procxy/childproc"
)

// process is a started child. startProcess is the only place that starts
// one; it goes through childproc, the only package that starts processes.
type process struct {
	c      *childproc.Child
	stdin  io.WriteCloser
	stdout io.ReadCloser
	stderr io.ReadCloser
}

// startProcess starts path with args, env, dir and iso, with pipes for stdin,
// stdout and stderr. With pdeathsig the child gets SIGKILL when the
// parent dies (Linux; tests turn it off)
// and leads its own process group where the platform has them, so that
// kill takes its descendants along. Its lifetime is not bound to any
// context: the module ends it with kill or $shutdown.
func startProcess(path string, args, env []string, dir string, pdeathsig bool, iso Isolation) (*process, error) {
	opts := childproc.Options{Dir: dir, Env: env}
	iso.apply(&opts)
	setProcAttrs(&opts, pdeathsig)
	c, err := childproc.Spawn(context.Background(), path, args, opts)
	if err != nil {
		return nil, err
	}
	return &process{c: c, stdin: c.Stdin(), stdout: c.Stdout(), stderr: c.Stderr()}, nil
}

func (p *process) pid() int { return p.c.PID() }

// exited is closed when the process has exited and was reaped.
func (p *process) exited() <-chan struct{} { return p.c.Exited() }

// done is closed when the process has exited and its output pipes are closed.
func (p *process) done() <-chan struct{} { return p.c.Done() }

// status returns the exit code (-1 when signalled) and signal; valid after exited.
func (p *process) status() (int, syscall.Signal) { return p.c.ExitCode(), p.c.ExitSignal() }

// killGroup sends SIGKILL to what is left of the child's process group
// after the child exited: descendants that would otherwise outlive it and
// hold its pipes open. Errors (no group, nobody left) are ignored.
func (p *process) killGroup() { p.c.KillGroup(syscall.SIGKILL) }

// kill sends SIGKILL to the child's process group, or to the child alone
// where it has none. Killing a child that has exited is not an error.
func (p *process) kill() error {
	err := p.c.KillGroup(syscall.SIGKILL)
	if errors.Is(err, childproc.ErrNoProcessGroup) || errors.Is(err, os.ErrProcessDone) {
		err = p.c.Kill(syscall.SIGKILL)
	}
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}
