package procxy

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/procxy/procxy/childproc"
	"github.com/procxy/procxy/internal/supervise"
	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/transport"
)

// child is a started child process and the parent's end of its connection.
// Its supervision — output, exit, kills, memory watchdog — is
// internal/supervise's, shared with package host.
type child struct {
	sup  *supervise.Child // nil for an attached child
	conn *os.File         // the parent's end of the socketpair
	wg   sync.WaitGroup   // the debugger stopper
	// dlvAddr is the address of the dlv API the child runs under, once dlv
	// has announced it (Debug).
	dlvAddr atomic.Pointer[string]
}

// spawn starts the child: the same executable (or o.executable) with
// o.args, the parent's environment plus o.env, and the socketpair's child
// end as fd 3. The child dies with the parent: SIGKILL on the parent's death
// (Linux), and EOF on the socket everywhere.
func spawn(o *options) (*child, error) {
	exe := o.executable
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("procxy: find this executable: %w", err)
		}
	}
	parentEnd, childEnd, err := transport.Socketpair()
	if err != nil {
		return nil, err
	}
	defer childEnd.Close() // the child has its own copy
	args := o.args
	if o.debug != nil {
		exe, args = o.debug.Command(exe, args) // dlv passes fd 3 on to its target
	}
	c := &child{conn: parentEnd}
	log := o.logger.With("child", o.key)
	spec := supervise.Spec{
		Name:    "procxy: child " + o.key,
		Path:    exe,
		Args:    args,
		Options: childOptions(o, childEnd),
		Logger:  log,
		Recycle: o.recycle,
		Err:     rpc.ErrClosed,
	}
	if o.debug != nil {
		spec.Stdout = func(line []byte, _ bool) bool { return c.sawDebugger(string(line), log) }
	}
	if c.sup, err = supervise.Start(context.Background(), spec); err != nil {
		parentEnd.Close()
		return nil, fmt.Errorf("procxy: start child: %w", err)
	}
	return c, nil
}

// childOptions is the one place the object proxy, Pool and Func build the
// childproc.Options a child starts with.
func childOptions(o *options, conn *os.File) childproc.Options {
	env := append(os.Environ(), o.env...)
	return o.isolate(childproc.Options{
		Dir:        o.dir,
		Env:        append(env, envChild+"=1"),
		Stdin:      childproc.Ignore(),
		ExtraFiles: []*os.File{conn},
		Pdeathsig:  syscall.SIGKILL,
	})
}
