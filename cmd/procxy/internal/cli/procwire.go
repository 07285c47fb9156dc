package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/procxy/procxy/childproc"
	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/rpc"
)

// defaultInitTimeout is how long procxy waits for a worker's $init line:
// Procwire's default, long enough for "go run" to compile a worker.
const defaultInitTimeout = host.DefaultStartTimeout

// stopGrace is how long a worker may take to exit after $shutdown before
// it is killed. It is short: the worker was started for this command
// alone, and one that still runs an aborted handler (the Node.js reference
// worker does, until its own timers end) must not hold procxy up.
const stopGrace = time.Second

// stopTimeout bounds the whole stop of a worker.
const stopTimeout = 5 * time.Second

// workerFlags are the flags of every command that starts a worker.
type workerFlags struct {
	initTimeout time.Duration
	env         stringList
	dir         string
	auth        bool
	verbose     bool
	quiet       bool
	// callTimeout is host.Config.CallTimeout; zero means none (the
	// caller bounds each call itself).
	callTimeout time.Duration
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func (wf *workerFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&wf.initTimeout, "init-timeout", defaultInitTimeout, "wait this `duration` for the worker's Procwire $init line")
	fs.Var(&wf.env, "env", "`KEY=VALUE` added to the worker's environment (repeatable)")
	fs.StringVar(&wf.dir, "dir", "", "the worker's working `directory` (default the current one)")
	fs.BoolVar(&wf.auth, "auth", false, "give the worker a token in PROCWIRE_TOKEN and authenticate the data channel")
	fs.BoolVar(&wf.verbose, "v", false, "verbose: timings, procxy's own diagnostics, and the worker's output as it comes, even before it is ready")
	fs.BoolVar(&wf.quiet, "q", false, "quiet: do not show what the worker prints on stderr (and stdout besides Procwire's lines)")
}

// worker is a Procwire worker started from a command line.
type worker struct {
	m      *host.Module
	schema host.InitSchema
	argv   []string
	pid    int
	ready  time.Duration // spawn → ready
	out    *outputLog
}

// startWorker starts the worker command inv.argv and waits until it is
// ready. A worker that cannot be started gives a *workerError with one
// line that says what went wrong; nothing of it is left running.
func startWorker(ctx context.Context, inv *invocation, wf *workerFlags) (*worker, error) {
	out := &outputLog{w: inv.stderr, verbose: wf.verbose, quiet: wf.quiet}
	name := filepath.Base(inv.argv[0])
	m, err := host.NewModule(host.Config{
		Name:        name,
		Executable:  inv.argv[0],
		Args:        inv.argv[1:],
		Env:         wf.env,
		Dir:         wf.dir,
		CallTimeout: cmp.Or(wf.callTimeout, -1),
		StopGrace:   stopGrace,
		Policy:      host.Policy{StartTimeout: wf.initTimeout, MaxRetries: -1, Auth: wf.auth},
		Logger:      slog.New(out),
	})
	if err != nil {
		return nil, usageErrorf("%s: %v", inv.name, err)
	}
	start := time.Now()
	err = m.Spawn(ctx)
	if err == nil {
		var sc host.InitSchema
		if sc, err = m.InitSchema(); err == nil {
			w := &worker{m: m, schema: sc, argv: inv.argv, pid: m.PID(), ready: time.Since(start), out: out}
			out.setReady()
			if wf.verbose {
				fmt.Fprintf(inv.stderr, "procxy: worker %s (pid %d) ready in %s with %d methods and %d events\n",
					shellJoin(inv.argv), w.pid, round(w.ready), len(sc.Methods), len(sc.Events))
			}
			return w, nil
		}
	}
	m.Shutdown(context.Background()) // the spawn has killed and reaped the child
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, startError(err, inv.argv, wf.initTimeout, out)
}

// stop shuts the worker down: $shutdown, then a kill after stopTimeout.
func (w *worker) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	return w.m.Shutdown(ctx)
}

// method finds an announced method of one of kinds. An unknown method is
// a usage error that lists the worker's methods.
func (w *worker) method(cmd, name string, kinds ...rpc.Kind) (host.AnnouncedMethod, error) {
	var names []string
	for _, am := range w.schema.Methods {
		if am.Name != name {
			names = append(names, am.Name)
			continue
		}
		if am.Problem != "" {
			return am, fmt.Errorf("%s: method %q cannot be called: the worker %s", cmd, name, am.Problem)
		}
		if !slices.Contains(kinds, am.Kind) {
			other := "call"
			if am.Kind == rpc.KindStream {
				other = "stream"
			}
			return am, usageErrorf("%s: %q is a %v method: use procxy %s %s", cmd, name, am.Kind, other, name)
		}
		return am, nil
	}
	if len(names) == 0 {
		return host.AnnouncedMethod{}, usageErrorf("%s: the worker has no method %q; it announced no methods at all", cmd, name)
	}
	return host.AnnouncedMethod{}, usageErrorf("%s: the worker has no method %q%s; it has: %s", cmd, name, didYouMean(name, names), strings.Join(names, ", "))
}

// startError turns a failed spawn into one line for a person.
func startError(err error, argv []string, initTimeout time.Duration, out *outputLog) error {
	prog := shellJoin(argv)
	printed := out.printed()
	var (
		se *childproc.SpawnError
		ee *host.ExitError
	)
	var msg string
	switch {
	case errors.As(err, &se):
		msg = fmt.Sprintf("cannot start %s: %v", prog, se.Errno)
	case errors.As(err, &ee):
		how := fmt.Sprintf("exited with status %d", ee.Code)
		if ee.Signal != 0 {
			how = fmt.Sprintf("was killed by signal %v", ee.Signal)
		}
		msg = fmt.Sprintf("%s %s before its Procwire $init line: it is not a Procwire worker, or it failed to start (%s)", prog, how, printed)
	case errors.Is(err, host.ErrInitTimeout):
		msg = fmt.Sprintf("%s sent no Procwire $init line within %v: it is not a Procwire worker, or it is stuck (%s); it was stopped", prog, initTimeout, printed)
	case errors.Is(err, host.ErrBadInit), errors.Is(err, host.ErrInitFailed):
		var spe *host.SpawnError
		if errors.As(err, &spe) {
			err = spe.Err
		}
		msg = fmt.Sprintf("%s failed its Procwire handshake: %v", prog, err)
	default:
		msg = fmt.Sprintf("%s: %v", prog, err)
	}
	return &workerError{msg: msg, err: err}
}

// outputLog is the slog.Handler that receives a worker's output lines
// (records with a "stream" attribute) and host's diagnostics. Until the
// worker is ready, its lines are held back (the last few of each stream
// are kept for an error message) unless verbose; once it is ready they
// are written to w as "[worker PID STREAM] line", unless quiet. It is
// safe for concurrent use.
type outputLog struct {
	w              io.Writer
	verbose, quiet bool

	mu     sync.Mutex
	ready  bool     // guarded by mu
	held   []string // lines held back until ready; guarded by mu
	stdout []string // the last stdout lines before ready; guarded by mu
	stderr []string // the last stderr lines before ready; guarded by mu
}

// keepLines is how many lines of each stream are kept, before the worker
// is ready, to say what went wrong.
const keepLines = 20

// errorLine matches the line of a failed program's output that most
// likely says why: "Error: Cannot find module", "panic: …", "fatal: …".
var errorLine = regexp.MustCompile(`(?i)\b(error|panic|fatal|exception|cannot|can't|failed|not found|denied|refused)\b`)

func (o *outputLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (o *outputLog) WithGroup(string) slog.Handler                { return o }
func (o *outputLog) WithAttrs([]slog.Attr) slog.Handler           { return o }

func (o *outputLog) Handle(_ context.Context, r slog.Record) error {
	var stream string
	var pid int64
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "stream":
			stream = a.Value.String()
		case "pid":
			pid = a.Value.Int64()
		}
		return true
	})
	o.mu.Lock()
	defer o.mu.Unlock()
	if stream == "" { // host itself
		if o.verbose {
			fmt.Fprintf(o.w, "[procxy] %s\n", r.Message)
		}
		return nil
	}
	line := fmt.Sprintf("[worker %d %s] %s\n", pid, stream, r.Message)
	if !o.ready {
		keep := &o.stdout
		if stream == "stderr" {
			keep = &o.stderr
		}
		*keep = append((*keep)[max(0, len(*keep)-keepLines+1):], r.Message)
		if !o.verbose {
			o.held = append(o.held[max(0, len(o.held)-99):], line)
			return nil
		}
	}
	if o.verbose || !o.quiet {
		io.WriteString(o.w, line)
	}
	return nil
}

// setReady writes the lines held back and lets the next ones through.
func (o *outputLog) setReady() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ready = true
	if !o.quiet {
		for _, l := range o.held {
			io.WriteString(o.w, l)
		}
	}
	o.held = nil
}

// printed says what the worker printed before it was ready.
func (o *outputLog) printed() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var parts []string
	if n := len(o.stdout); n > 0 {
		parts = append(parts, fmt.Sprintf("its stdout ended with %q", o.stdout[n-1]))
	}
	if line := telling(o.stderr); line != "" {
		parts = append(parts, fmt.Sprintf("its stderr said %q", line))
	}
	if len(parts) == 0 {
		return "it printed nothing"
	}
	return strings.Join(parts, "; ")
}

// telling returns the line of lines that most likely says what went
// wrong: the last that names an error, else the last that is not blank.
func telling(lines []string) string {
	last := ""
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if errorLine.MatchString(l) {
			return l
		}
		if last == "" {
			last = l
		}
	}
	return last
}

// shellJoin writes argv as a person would type it.
func shellJoin(argv []string) string {
	parts := make([]string, len(argv))
	for i, a := range argv {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$`|&;<>()*?[]#~{}") {
			parts[i] = a
		} else {
			parts[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(parts, " ")
}

// round rounds a duration to three significant digits, for people:
// 41.2µs, 221ms, 1.23s.
func round(d time.Duration) time.Duration {
	unit := time.Duration(1)
	for d/unit >= 1000 {
		unit *= 10
	}
	return d.Round(unit)
}
