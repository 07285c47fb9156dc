package host

import (
	"context"
	"fmt"

	"github.com/procxy/procxy/childproc"
	"github.com/procxy/procxy/internal/supervise"
	"github.com/procxy/procxy/rpc"
)

// childOptions is the one place host builds the childproc.Options a
// module's child starts with: stdin is a pipe (the control plane); the
// child leads its own process group where the platform has them, so that
// a kill takes its descendants along, and gets SIGKILL when the parent
// dies (Linux; tests turn it off).
func (m *Module) childOptions(env []string) childproc.Options {
	opts := childproc.Options{Dir: m.cfg.Dir, Env: env, Stdin: childproc.Pipe()}
	m.cfg.Isolation.apply(&opts)
	setProcAttrs(&opts, !m.noPdeathsig)
	return opts
}

// startChild starts path with args and env under internal/supervise,
// which forwards its output, watches its memory and describes its exit.
// Its lifetime is not bound to any context: the module ends it with a
// kill or $shutdown. stdout sees each stdout line first (the control
// plane).
func (m *Module) startChild(path string, args, env []string, stdout func([]byte, bool) bool) (*supervise.Child, error) {
	opts := m.childOptions(env)
	return supervise.Start(context.Background(), supervise.Spec{
		Name:      fmt.Sprintf("host: module %q", m.cfg.Name),
		Path:      path,
		Args:      args,
		Options:   opts,
		Logger:    m.log,
		MaxLine:   MaxLineSize,
		Stdout:    stdout,
		KillGroup: opts.ProcessGroup,
		Recycle:   m.cfg.Recycle,
		Err:       rpc.ErrClosed,
	})
}
