package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/procxy/procxy/childproc"
)

// Defaults used when the matching Spec field is zero.
const (
	// DefaultMaxLine bounds one forwarded output line; a longer line is
	// logged cut to this size with truncated=true.
	DefaultMaxLine = 1 << 20
	// DefaultCheckEvery is how often the resident-memory watchdog looks.
	DefaultCheckEvery = 250 * time.Millisecond
	// drainWait bounds how long the end of a child waits for its output
	// pipes to close after it exited (a grandchild may hold them open), so
	// that a panic's last lines reach the exit error.
	drainWait = time.Second
	// ExitWait bounds how long an error from a connection that closed waits
	// for the child's exit to be known, so that it can be explained.
	ExitWait = 2 * time.Second
)

// ErrRecycled is matched by the exit error of a child that a recycling
// policy ended: its resident memory, its age, its number of calls, or a
// call that did not return in time.
var ErrRecycled = errors.New("recycled")

// RecycleError says why a policy ended a child. It matches ErrRecycled.
type RecycleError struct{ Why string }

func (e *RecycleError) Error() string        { return "recycled: " + e.Why }
func (e *RecycleError) Is(target error) bool { return target == ErrRecycled }

// Spec says how to start and watch a child.
type Spec struct {
	// Name is how the exit error names the child ("procxy: child x.T",
	// `host: module "m"`).
	Name string
	Path string
	Args []string
	// Options are the childproc options; Start sets Stdout and Stderr to
	// pipes, which it reads.
	Options childproc.Options
	// Logger receives each output line at Info, with stream=stdout|stderr,
	// pid, and truncated=true for a cut line. Nil discards the output.
	Logger *slog.Logger
	// MaxLine bounds a forwarded line; zero means DefaultMaxLine.
	MaxLine int
	// Stdout and Stderr, when set, see each line of that stream first; a
	// line they report as handled is not logged.
	Stdout, Stderr func(line []byte, cut bool) bool
	// KillGroup makes kills signal the child's process group (which needs
	// Options.ProcessGroup), and kills what is left of the group after the
	// child exited.
	KillGroup bool
	// Recycle is the child's recycling policy: MaxRSS is watched from
	// Start on (Linux; elsewhere Start fails with errors.ErrUnsupported),
	// the rest once the owner calls Child.Recycle.
	Recycle Recycle
	// Err is set as the exit error's Err: what else the end of the child
	// matches (rpc.ErrClosed: its connection is gone).
	Err error
	// CheckEvery is how often the Recycle.MaxRSS watchdog looks; zero means
	// DefaultCheckEvery.
	CheckEvery time.Duration
}

// Child is a supervised child process. Its methods are safe for
// concurrent use.
type Child struct {
	spec Spec
	proc *childproc.Child
	tail tail
	out  sync.WaitGroup // the output readers
	oom  oomCounter     // the cgroup's OOM kill count at the start
	use  usage          // the Recycle policy's state

	mu    sync.Mutex // guards cause
	cause error      // why we killed it; first wins

	exited chan struct{}        // closed once err is set
	err    *childproc.ExitError // how it ended
}

// Start starts the child and the goroutines that forward its output, watch
// its memory and wait for its exit. ctx bounds the start only.
func Start(ctx context.Context, spec Spec) (*Child, error) {
	if spec.Recycle.MaxRSS > 0 && !rssSupported {
		return nil, fmt.Errorf("%s: a resident-memory limit needs /proc (Linux): %w", spec.Name, errors.ErrUnsupported)
	}
	if spec.MaxLine <= 0 {
		spec.MaxLine = DefaultMaxLine
	}
	if spec.CheckEvery <= 0 {
		spec.CheckEvery = DefaultCheckEvery
	}
	if spec.Logger == nil {
		spec.Logger = slog.New(slog.DiscardHandler)
	}
	spec.Options.Stdout, spec.Options.Stderr = childproc.Pipe(), childproc.Pipe()
	oom := readOOMCount()
	p, err := childproc.Spawn(ctx, spec.Path, spec.Args, spec.Options)
	if err != nil {
		return nil, err
	}
	c := &Child{spec: spec, proc: p, oom: oom, exited: make(chan struct{})}
	log := spec.Logger.With("pid", p.PID())
	c.out.Go(func() { c.forward("stdout", p.Stdout(), log, spec.Stdout, false) })
	c.out.Go(func() { c.forward("stderr", p.Stderr(), log, spec.Stderr, true) })
	go c.watch()
	if spec.Recycle.MaxRSS > 0 {
		go c.watchRSS()
	}
	return c, nil
}

// Proc returns the childproc child (its stdin, its pid).
func (c *Child) Proc() *childproc.Child { return c.proc }

// PID returns the child's process id.
func (c *Child) PID() int { return c.proc.PID() }

// Exited is closed when the child has exited and Err describes it.
func (c *Child) Exited() <-chan struct{} { return c.exited }

// Err returns how the child ended; nil until Exited is closed.
func (c *Child) Err() *childproc.ExitError {
	select {
	case <-c.exited:
		return c.err
	default:
		return nil
	}
}

// Cause returns why the child was killed on purpose, or nil.
func (c *Child) Cause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// Kill sends SIGKILL (to the process group with Spec.KillGroup) and
// records cause as the reason, unless an earlier Kill gave one. Killing
// a child that has exited is not an error.
func (c *Child) Kill(cause error) error {
	c.mu.Lock()
	if c.cause == nil {
		c.cause = cause
	}
	c.mu.Unlock()
	var err error
	if c.spec.KillGroup {
		err = c.proc.KillGroup(syscall.SIGKILL)
	}
	if !c.spec.KillGroup || errors.Is(err, childproc.ErrNoProcessGroup) || errors.Is(err, os.ErrProcessDone) {
		err = c.proc.Kill(syscall.SIGKILL)
	}
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// Stop waits for the child to exit — the caller has asked it to, by
// closing its connection or a control message — for up to grace, then
// kills it with cause, as os/exec's WaitDelay does. It returns when the
// child's end is described, and ctx's cause if ctx ended first (the child
// is killed then too). A grace of zero or less kills at once.
func (c *Child) Stop(ctx context.Context, grace time.Duration, cause error) error {
	var err error
	if grace > 0 {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-c.exited:
			return nil
		case <-c.proc.Exited():
		case <-t.C:
			c.spec.Logger.Warn(c.spec.Name+": still running after the grace period; killing it", "pid", c.PID(), "grace", grace)
			c.Kill(cause)
		case <-ctx.Done():
			err = context.Cause(ctx)
			c.Kill(cause)
		}
	} else {
		c.Kill(cause)
	}
	<-c.exited
	return err
}

// ExitOr returns the child's exit error if the child has exited or exits
// within ExitWait (a connection usually closes just before the exit is
// reaped), else err.
func (c *Child) ExitOr(ctx context.Context, err error) error {
	t := time.NewTimer(ExitWait)
	defer t.Stop()
	select {
	case <-c.exited:
		return c.err
	case <-ctx.Done():
	case <-t.C:
	}
	return err
}

// forward logs r line by line until EOF; stderr lines go to the tail too.
func (c *Child) forward(stream string, r io.Reader, log *slog.Logger, seen func([]byte, bool) bool, keep bool) {
	lr := NewLineReader(r, c.spec.MaxLine)
	for {
		b, cut, err := lr.Next()
		if err != nil {
			return
		}
		if seen != nil && seen(b, cut) {
			continue
		}
		if keep {
			c.tail.add(b)
		}
		if cut {
			log.Info(string(b), "stream", stream, "truncated", true)
		} else {
			log.Info(string(b), "stream", stream)
		}
	}
}

// watch waits for the exit, lets the readers take the last output, and
// describes the end.
func (c *Child) watch() {
	<-c.proc.Exited() // not Wait: a grandchild may keep the output pipes open
	c.stopAge()
	if c.spec.KillGroup {
		c.proc.KillGroup(syscall.SIGKILL) // descendants that would hold the pipes
	}
	drained := make(chan struct{})
	go func() { c.out.Wait(); close(drained) }()
	t := time.NewTimer(drainWait)
	select {
	case <-drained:
	case <-t.C:
		c.proc.Stdout().Close() // a descendant holds them: stop reading
		c.proc.Stderr().Close()
		<-drained
	}
	t.Stop()
	e := &childproc.ExitError{Name: c.spec.Name, PID: c.PID(), Code: c.proc.ExitCode(),
		Signal: c.proc.ExitSignal(), Killed: c.proc.Killed(), Cause: c.Cause(), Err: c.spec.Err}
	e.Stderr, e.Panic = c.tail.snapshot()
	e.Reason = explain(e, c.spec.Options.Limits, c.oom, readOOMCount())
	c.err = e
	close(c.exited)
}

// watchRSS recycles the child when its resident memory passes MaxRSS.
func (c *Child) watchRSS() {
	t := time.NewTicker(c.spec.CheckEvery)
	defer t.Stop()
	for {
		select {
		case <-c.proc.Exited():
			return
		case <-t.C:
		}
		rss, err := residentBytes(c.PID())
		if err != nil || rss <= c.spec.Recycle.MaxRSS {
			continue
		}
		c.Kill(&RecycleError{Why: fmt.Sprintf("resident memory %s over the limit %s", FormatBytes(rss), FormatBytes(c.spec.Recycle.MaxRSS))})
		return
	}
}

// FormatBytes writes n as "512 B", "3.0 KiB", "310.5 MiB", "1.2 GiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
