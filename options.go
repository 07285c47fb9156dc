package procxy

import (
	"log/slog"
	"time"

	"github.com/procxy/procxy/internal/delve"
	"github.com/procxy/procxy/observe"
)

// Option configures New, NewPool and Func.Start.
type Option interface{ apply(*options) }

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

// Defaults.
const (
	DefaultCallTimeout  = 30 * time.Second // per call
	DefaultStartTimeout = 30 * time.Second // spawn and construct
	DefaultStopGrace    = 5 * time.Second  // Close waits this long before killing
)

type options struct {
	key          string
	env          []string
	dir          string
	args         []string
	executable   string
	callTimeout  time.Duration // negative: none
	startTimeout time.Duration
	stopGrace    time.Duration // negative: kill at once
	recycle      Recycle
	retries      int
	idempotent   map[string]bool
	logger       *slog.Logger
	config       any
	hasConfig    bool
	serialized   bool
	noLane       bool
	debug        *delve.Config // run the child under dlv (Debug, PROCXY_DEBUG)
	attach       string        // a socket to use instead of spawning (Attach, PROCXY_ATTACH)
	observer     observe.Observer
	keepalive    time.Duration // Remote: the workers' sign of life
	hasKeepalive bool
	forward      *listeners // a Pool's listeners, which its members' events also reach
	isolation    isolation  // Limits, RunAs, NoNewPrivs (isolation.go)
}

func newOptions(key string, opts []Option) options {
	o := options{key: key}
	for _, opt := range opts {
		opt.apply(&o)
	}
	o.callTimeout = orDefault(o.callTimeout, DefaultCallTimeout)
	o.startTimeout = orDefault(o.startTimeout, DefaultStartTimeout)
	o.stopGrace = orDefault(o.stopGrace, DefaultStopGrace)
	if o.logger == nil {
		o.logger = slog.Default()
	}
	o.fromEnv(o.key)
	return o
}

// Env adds "KEY=value" entries to the child's environment, which is
// otherwise the parent's; an entry replaces the parent's entry with the
// same key. (host.Config.Env has the same meaning.)
func Env(kv ...string) Option {
	return optionFunc(func(o *options) { o.env = append(o.env, kv...) })
}

// Dir sets the child's working directory; the default is the parent's.
func Dir(dir string) Option { return optionFunc(func(o *options) { o.dir = dir }) }

// Args sets the child's command-line arguments (os.Args[1:] in the child).
func Args(args ...string) Option { return optionFunc(func(o *options) { o.args = args }) }

// Executable runs another binary as the child instead of this one. It must
// call procxy.Main first and Register the type under the same key.
func Executable(path string) Option { return optionFunc(func(o *options) { o.executable = path }) }

// CallTimeout bounds each call. Zero means DefaultCallTimeout (30 s);
// negative means no timeout. A context deadline that comes sooner wins.
// Streams are bounded only by their context. (host.Config.CallTimeout has
// the same meaning.)
func CallTimeout(d time.Duration) Option { return optionFunc(func(o *options) { o.callTimeout = d }) }

// StartTimeout bounds starting the child and constructing the object.
// Zero means DefaultStartTimeout (30 s); negative means no limit. A child
// that never starts serving (for example because it does not call Main)
// fails New with ErrNoMain.
func StartTimeout(d time.Duration) Option {
	return optionFunc(func(o *options) { o.startTimeout = d })
}

// StopGrace is how long Close waits for the child to exit after closing
// its connection before killing it. Zero means DefaultStopGrace (5 s);
// negative means kill at once. (host.Config.StopGrace has the same
// meaning.)
func StopGrace(d time.Duration) Option { return optionFunc(func(o *options) { o.stopGrace = d }) }

// orDefault resolves a duration option: zero means def, negative stays
// negative (none, or at once).
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Retries lets a call be tried again, up to n more times, when it provably
// never started in the child (the child was already gone), or when its method
// is marked with Idempotent. A proxy with retries replaces a child that died
// by a new one — constructed anew, so its state starts over — at the next
// call; without retries a dead child ends the proxy.
func Retries(n int) Option { return optionFunc(func(o *options) { o.retries = n }) }

// Idempotent marks methods that may safely run twice, so Retries also
// applies when the child (or worker) died in the middle of them. With no
// names it marks every method, and a Func's calls.
func Idempotent(methods ...string) Option {
	return optionFunc(func(o *options) {
		if o.idempotent == nil {
			o.idempotent = make(map[string]bool)
		}
		if len(methods) == 0 {
			o.idempotent[allMethods] = true
		}
		for _, m := range methods {
			o.idempotent[m] = true
		}
	})
}

// allMethods is the key of Idempotent() in options.idempotent.
const allMethods = "*"

// isIdempotent reports whether Idempotent marked method.
func (o *options) isIdempotent(method string) bool {
	return o.idempotent[method] || o.idempotent[allMethods]
}

// Logger receives the child's stdout and stderr, line by line, tagged with
// the type's key (child=), the child's pid and the stream, plus procxy's own
// warnings. Nil, the default, means slog.Default(), so that a child's
// output is never lost. (host.Config.Logger has the same meaning.)
func Logger(l *slog.Logger) Option { return optionFunc(func(o *options) { o.logger = l }) }

// Config is the value passed to the type's constructor in the child. It is
// encoded before anything is started, so a value that cannot be sent fails
// New at once.
func Config(v any) Option {
	return optionFunc(func(o *options) { o.config, o.hasConfig = v, true })
}

// Serialized makes the child run one method call at a time. By default
// calls run concurrently, each in its own goroutine, so the type must be
// safe for concurrent use.
func Serialized() Option { return optionFunc(func(o *options) { o.serialized = true }) }

// SharedMemory turns the shared-memory lane on or off; it is on by
// default. With it on, arguments and results of 256 KiB or more travel
// between the parent and the child through memory both map (on Linux),
// and only a small reference goes through their socket: a large []byte
// costs a copy on each side instead of a trip through the kernel in
// socket-buffer-sized pieces. Where shared memory is unavailable the
// socket carries everything, as with the lane off.
func SharedMemory(on bool) Option { return optionFunc(func(o *options) { o.noLane = !on }) }
