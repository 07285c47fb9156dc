package childproc

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Child is a started process (Node's ChildProcess). Its methods are safe
// for concurrent use.
//
// Node's events map to Go values: 'spawn' is Spawn returning without error
// and 'error' is an error returned by Spawn, Kill or Send; 'exit' is
// [Child.Exited]; 'close' is [Child.Done] and [Child.Wait]; 'message' and
// 'disconnect' are [Channel.Messages] and [Channel.Disconnected] on
// [Child.Channel].
type Child struct {
	proc       *os.Process
	pid        int
	spawnFile  string
	spawnArgs  []string
	ownGroup   bool // leader of its own process group
	killSignal syscall.Signal
	killGroup  bool
	stopGrace  time.Duration
	reaped     func() // when not nil, called once the process has been reaped

	stdin          *os.File
	stdout, stderr *outPipe
	channel        *Channel

	exited chan struct{} // closed when the process has exited and was reaped
	done   chan struct{} // closed when exited and every stream and the channel are closed
	wg     sync.WaitGroup

	mu     sync.Mutex // guards the fields below
	state  *os.ProcessState
	code   int
	signal syscall.Signal
	killed bool
	cause  error
	open   int           // the process, taken output pipes and the channel, not yet finished
	isDone bool          // done is closed
	onKill func()        // run after an automatic kill (Exec closes its pipes)
	timers []func() bool // stopped when the process exits
}

// PID returns the child's process id.
func (c *Child) PID() int { return c.pid }

// SpawnFile returns the program that was started (Node's spawnfile): the
// shell when Options.Shell was set.
func (c *Child) SpawnFile() string { return c.spawnFile }

// SpawnArgs returns the full argument list, argv[0] included (Node's spawnargs).
func (c *Child) SpawnArgs() []string { return append([]string(nil), c.spawnArgs...) }

// Stdin returns the write end of the child's stdin, or nil when stdin is
// not Pipe. Closing it gives the child EOF. It is closed when the child exits.
func (c *Child) Stdin() io.WriteCloser {
	if c.stdin == nil {
		return nil
	}
	return c.stdin
}

// Stdout returns the read end of the child's stdout, or nil when stdout is
// not Pipe. It closes itself at EOF.
//
// Taking the reader is a promise to read it to EOF or Close it: from then
// on Done (Node's 'close') also waits for that, so a goroutine copying the
// output has finished when Wait returns. A pipe nobody takes does not hold
// Done back; what the child wrote stays readable until the Child is
// garbage collected.
func (c *Child) Stdout() io.ReadCloser {
	if c.stdout == nil {
		return nil
	}
	c.take(c.stdout)
	return c.stdout
}

// Stderr is like Stdout, for stderr.
func (c *Child) Stderr() io.ReadCloser {
	if c.stderr == nil {
		return nil
	}
	c.take(c.stderr)
	return c.stderr
}

// take makes Done wait for p, unless p already ended or Done has come.
func (c *Child) take(p *outPipe) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !p.taken {
		p.taken = true
		if !p.ended && !c.isDone {
			p.counted = true
			c.open++
		}
	}
}

// pipeEnded is called once by p at EOF, error or Close.
func (c *Child) pipeEnded(p *outPipe) {
	c.mu.Lock()
	p.ended = true
	counted := p.counted
	c.mu.Unlock()
	if counted {
		c.release()
	}
}

// Channel returns the parent's end of the IPC channel, or nil when the
// child was started without one.
func (c *Child) Channel() *Channel { return c.channel }

// Exited returns a channel that is closed when the process has exited
// (Node's 'exit'); output may still be unread.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// Done returns a channel that is closed when the process has exited, the
// stdout and stderr pipes taken with Stdout and Stderr reached EOF or were
// closed, and the IPC channel is disconnected (Node's 'close'). Unlike
// Node, a Disconnect by the parent counts as closed, so Done always comes.
func (c *Child) Done() <-chan struct{} { return c.done }

// Wait waits for Done or for ctx. It returns nil when the child exited
// with status 0 and childproc did not kill it, an *ExitError when it exited
// otherwise, or ctx's error (the child keeps running; see Kill).
func (c *Child) Wait(ctx context.Context) error {
	select {
	case <-c.done:
		c.wg.Wait() // the waiter goroutine returns right after closing done
		return c.exitErr()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ExitCode returns the exit status, or -1 while the child runs or when a
// signal ended it (Node's exitCode).
func (c *Child) ExitCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == nil {
		return -1
	}
	return c.code
}

// ProcessState returns the child's final state, with its resource usage,
// or nil while it runs.
func (c *Child) ProcessState() *os.ProcessState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// ExitSignal returns the signal that ended the child, or 0 (Node's signalCode).
func (c *Child) ExitSignal() syscall.Signal {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signal
}

// Killed reports whether childproc has delivered a signal to the child
// (Node's killed). It does not mean that the child died.
func (c *Child) Killed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.killed
}

// Kill sends sig to the child only (Node's kill(); SIGTERM is Node's
// default). It returns os.ErrProcessDone when the child has already exited
// (Node returns false). Signal 0 checks that the child exists.
func (c *Child) Kill(sig syscall.Signal) error { return c.send(sig, false) }

// KillGroup sends sig to every process in the child's process group, so
// that grandchildren die too. The child must have been started with
// Options.ProcessGroup, Detached or KillGroup, else it returns
// ErrNoProcessGroup. It works after the child itself has exited, as long
// as a member of the group is left (an unreaped zombie counts); when none
// is, it returns os.ErrProcessDone.
func (c *Child) KillGroup(sig syscall.Signal) error {
	if !c.ownGroup {
		return ErrNoProcessGroup
	}
	return c.send(sig, true)
}

func (c *Child) send(sig syscall.Signal, group bool) error {
	// Mark the child killed before the signal: it may die and be reaped
	// before this goroutine runs again, and its exit must say killed.
	c.mu.Lock()
	was := c.killed
	c.killed = true
	c.mu.Unlock()
	var err error
	if group {
		err = killGroup(c.pid, sig)
	} else {
		err = c.proc.Signal(sig)
	}
	if err != nil {
		c.mu.Lock()
		c.killed = was
		c.mu.Unlock()
	}
	return err
}

// killFor sends KillSignal because of cause (timeout, context, maxBuffer).
// Only the first cause counts; nothing happens after the exit.
func (c *Child) killFor(cause error) {
	c.mu.Lock()
	if c.state != nil || c.cause != nil {
		c.mu.Unlock()
		return
	}
	c.cause = cause
	onKill := c.onKill
	c.mu.Unlock()
	err := c.send(c.killSignal, c.killGroup)
	if onKill != nil {
		onKill()
	}
	if err == nil && c.stopGrace > 0 {
		t := time.AfterFunc(c.stopGrace, func() { c.send(syscall.SIGKILL, c.killGroup) })
		c.addTimer(t.Stop)
	}
}

// addTimer registers a stop function to run at exit, or runs it now.
func (c *Child) addTimer(stop func() bool) {
	c.mu.Lock()
	if c.state == nil {
		c.timers = append(c.timers, stop)
		stop = nil
	}
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// waitProcess is the child's waiter goroutine: it returns when the process
// has exited.
func (c *Child) waitProcess() {
	ps, err := c.proc.Wait()
	if c.reaped != nil {
		c.reaped()
	}
	code, sig := -1, syscall.Signal(0)
	if err == nil {
		code, sig = exitStatus(ps)
	} else { // cannot happen for a child we started; record an unknown end
		ps = &os.ProcessState{}
	}
	c.mu.Lock()
	c.state, c.code, c.signal = ps, code, sig
	timers := c.timers
	c.timers = nil
	c.mu.Unlock()
	for _, stop := range timers {
		stop()
	}
	if c.stdin != nil {
		c.stdin.Close() // as Node destroys stdin on exit
	}
	close(c.exited)
	c.release()
}

// release marks the process, a pipe or the channel finished.
func (c *Child) release() {
	c.mu.Lock()
	c.open--
	last := c.open == 0
	c.isDone = c.isDone || last
	c.mu.Unlock()
	if last {
		close(c.done)
	}
}

func (c *Child) exitErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.code == 0 && c.signal == 0 && c.cause == nil {
		return nil
	}
	return &ExitError{PID: c.pid, Code: c.code, Signal: c.signal, Killed: c.killed, Cause: c.cause}
}

// outPipe is the parent's read end of a stdout or stderr pipe. It reports
// its end (EOF, error or Close) to the Child once.
type outPipe struct {
	f     *os.File
	once  sync.Once
	child *Child
	eof   atomic.Bool

	// guarded by child.mu
	taken, counted, ended bool
}

func (p *outPipe) Read(b []byte) (int, error) {
	if p.eof.Load() {
		return 0, io.EOF // the file is closed, but the reader saw EOF
	}
	n, err := p.f.Read(b)
	if err != nil {
		if err == io.EOF {
			p.eof.Store(true)
		}
		p.finish()
	}
	return n, err
}

// Close closes the pipe; the child gets EPIPE (or SIGPIPE) if it writes more.
func (p *outPipe) Close() error {
	err := p.f.Close()
	p.finish()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}

func (p *outPipe) finish() {
	p.once.Do(func() {
		p.f.Close()
		p.child.pipeEnded(p)
	})
}
