package host

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/procxy/procxy/internal/supervise"
	"github.com/procxy/procxy/observe"
	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
)

// Defaults used when the matching field is zero (Procwire §9.1).
const (
	DefaultCallTimeout   = 30 * time.Second
	DefaultStartTimeout  = 30 * time.Second
	DefaultMaxRetries    = 3
	DefaultBackoffBase   = supervise.DefaultBackoffBase   // 1 s, as procxy's Pool
	DefaultBackoffMax    = supervise.DefaultBackoffMax    // 30 s
	DefaultBackoffJitter = supervise.DefaultBackoffJitter // 0.2
	DefaultRestartMax    = supervise.DefaultRestartMax    // 5
	DefaultRestartWindow = supervise.DefaultRestartWindow // 60 s
	DefaultRestartDelay  = time.Second
	DefaultStopGrace     = 5 * time.Second
	// ConnectTimeout bounds the connect to the socket announced in $init.
	ConnectTimeout = 10 * time.Second
	// MaxLineSize bounds one line of the child's stdout or stderr; a longer
	// line is logged cut to this size.
	MaxLineSize = supervise.DefaultMaxLine
)

// Config defines a module: the worker program, the methods and events the
// parent uses, and the policy that keeps it running. The zero value of each
// field means its default. [NewModule] copies it; later changes to the
// caller's Config have no effect.
type Config struct {
	// Name identifies the module: it tags the child's output in the log, is
	// passed to the child as PROCWIRE_MODULE_NAME and names it in errors.
	// Required.
	Name string
	// Executable is the program to run, looked up in the PATH of the
	// child's environment when it contains no slash (procxy's Executable
	// option names the same thing). Required.
	Executable string
	// Args are the program's arguments, without argv[0].
	Args []string
	// Env holds "KEY=value" entries laid over the parent's own environment.
	Env []string
	// Dir is the child's working directory; empty means the parent's.
	Dir string

	// Methods are the methods this parent calls. Each must be announced by
	// the child's $init with the same response kind, or the spawn fails with
	// a *SchemaError. Methods the child has and the parent does not declare
	// are allowed and unused.
	Methods []Method
	// Events are the events this parent expects; each must be announced by
	// the child. [OnEvent] also delivers events not listed here (decoded
	// with msgpack) when the child announces them.
	Events []Event

	// CallTimeout bounds each result and ack call whose method sets no
	// timeout and whose child announces none. Zero means
	// DefaultCallTimeout (30 s); negative means no timeout.
	CallTimeout time.Duration
	// StopGrace is how long Shutdown lets calls in flight finish, and
	// then how long it waits for the child to exit after $shutdown before
	// killing it. Zero means DefaultStopGrace (5 s); negative means fail
	// the calls and kill at once.
	StopGrace time.Duration
	// MaxPayload is the largest payload accepted from the child; zero means
	// 1 GiB (see rpc.Options).
	MaxPayload int

	// Policy controls spawning, retries, restarts, heartbeat and auth.
	Policy Policy

	// Isolation limits the child's resources and privileges (Linux).
	Isolation Isolation

	// Recycle replaces the child after a number of calls, at an age, over
	// a resident-memory limit, or after a call timed out — the same type
	// and rules as procxy's Recycling. A recycled child's replacement is a
	// restart (Policy's restart budget applies) even without
	// RestartOnCrash. The zero value never recycles.
	Recycle Recycle

	// Debug runs the child under Delve's headless debugger and logs the
	// address of dlv's API (attribute "dlv"), so that an IDE or `dlv
	// connect` can attach; nil means no debugger, unless PROCXY_DEBUG names
	// the module. While debugging, call timeouts and the heartbeat are off
	// and StartTimeout is at least 10 minutes. The child must be a Go
	// program built with symbols.
	Debug *Delve

	// Observer sees every call to the module's child — method, duration,
	// bytes each way, error — and its spawns, exits and restarts (package
	// observe); nil means none. The trace context it puts in a call's
	// Carrier reaches a procxy worker with an Observer (which announces
	// that it takes it); a Procwire (Node.js) child has no place for it,
	// and its calls have a nil Carrier.
	Observer observe.Observer

	// Logger receives the child's output — stdout lines that are not
	// control messages, and every stderr line — tagged module=<Name> and
	// stream=stdout|stderr, plus the module's own diagnostics. Nil means
	// slog.Default(), so that the child's output is never lost.
	Logger *slog.Logger
	// OnChange, when set, is called for every state change of the module,
	// in order, on one goroutine owned by the module and never while a lock
	// is held. It must not block for long; it may call the Module's methods.
	OnChange func(Change)
}

// Recycle says when a module's child is replaced by a fresh one; see
// procxy.Recycle, which is the same type.
type Recycle = supervise.Recycle

// Method declares a method of the child as the parent calls it.
type Method struct {
	Name string
	// Kind is the response kind the child must announce; the zero value is
	// rpc.KindResult. Use [Call] for result and ack methods, [Stream] for
	// stream methods and [Send] for none.
	Kind rpc.Kind
	// Timeout bounds each call of a result or ack method. Zero means the
	// child's $init timeout for this method if it announces one, else
	// Config.CallTimeout; negative means no timeout. Streams and
	// fire-and-forget calls have no timeout.
	Timeout time.Duration
	// Request and Response are the payload codecs; nil means msgpack.
	// They must match the child's (codecs are never negotiated).
	Request, Response codec.Codec
}

// Event declares an event the child emits.
type Event struct {
	Name  string
	Codec codec.Codec // nil means msgpack
}

// Policy is the spawn policy of a module (Procwire's spawnPolicy). The zero
// value means Procwire's defaults: 30 s init timeout, 3 retries with
// exponential backoff from 1 s to 30 s, no restart on crash, no heartbeat,
// no auth.
type Policy struct {
	// StartTimeout bounds the wait for the child's $init line in each
	// attempt; the child is killed when it expires. Zero means
	// DefaultStartTimeout (30 s); negative means no limit.
	StartTimeout time.Duration
	// MaxRetries is how many times a failed spawn attempt is retried. Zero
	// means DefaultMaxRetries (3); negative means none.
	MaxRetries int
	// Backoff spaces the retries.
	Backoff Backoff
	// RestartOnCrash restarts a module whose child exits, loses its data
	// channel or misses its heartbeat while ready, after RestartDelay and
	// within RestartLimit. A restart is a full spawn with its own retries.
	RestartOnCrash bool
	// RestartDelay is the wait between a crash and the restart's first
	// attempt. Zero means DefaultRestartDelay (1 s); negative means none.
	RestartDelay time.Duration
	// RestartLimit caps restarts in a sliding window.
	RestartLimit RestartLimit
	// Heartbeat, when Interval is set, checks the child with $ping/$pong.
	Heartbeat Heartbeat
	// Auth gives each attempt a fresh random token (PROCWIRE_TOKEN) that
	// the parent sends as the first data-plane frame.
	Auth bool
}

// Backoff is an exponential retry delay: before retry n (n ≥ 1) the module
// waits min(Base·2^(n−1), Max), randomized by ±Jitter of itself. Set Max
// equal to Base for a fixed delay.
type Backoff struct {
	Base time.Duration // zero means DefaultBackoffBase (1 s)
	Max  time.Duration // zero means DefaultBackoffMax (30 s); never below Base
	// Jitter is the fraction of each delay that is randomized. Zero means
	// DefaultBackoffJitter (0.2); negative means none; at most 1.
	Jitter float64
}

// RestartLimit allows at most Max restarts within any Window; past it the
// module fails with ErrTooManyRestarts.
type RestartLimit struct {
	Max    int           // zero means DefaultRestartMax (5); negative means unlimited
	Window time.Duration // zero means DefaultRestartWindow (60 s)
}

// Heartbeat configures liveness checks (Procwire §9.2): a $ping is written
// when the module becomes ready and then every Interval once the previous
// one was answered; a ping unanswered for Timeout is detected at the next
// tick, and the child is killed (a crash, restarted per policy).
type Heartbeat struct {
	Interval time.Duration // zero turns the heartbeat off
	Timeout  time.Duration // zero means 3×Interval
}

// resolve returns cfg with every default filled in, or an error for a
// configuration that cannot work.
func resolve(cfg Config) (Config, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if cfg.Name == "" {
		bad("Name is empty")
	}
	if cfg.Executable == "" {
		bad("Executable is empty")
	}
	cfg.Args = append([]string(nil), cfg.Args...)
	cfg.Env = append([]string(nil), cfg.Env...)
	cfg.Methods = append([]Method(nil), cfg.Methods...)
	cfg.Events = append([]Event(nil), cfg.Events...)
	seen := map[string]bool{}
	for i := range cfg.Methods {
		md := &cfg.Methods[i]
		switch {
		case md.Name == "":
			bad("Methods[%d] has no name", i)
		case seen[md.Name]:
			bad("method %q is declared twice", md.Name)
		case md.Kind > rpc.KindNone:
			bad("method %q has an invalid kind %v", md.Name, md.Kind)
		}
		seen[md.Name] = true
		md.Request, md.Response = orMsgpack(md.Request), orMsgpack(md.Response)
	}
	seen = map[string]bool{}
	for i := range cfg.Events {
		ev := &cfg.Events[i]
		switch {
		case ev.Name == "":
			bad("Events[%d] has no name", i)
		case seen[ev.Name]:
			bad("event %q is declared twice", ev.Name)
		}
		seen[ev.Name] = true
		ev.Codec = orMsgpack(ev.Codec)
	}
	debugConfig(&cfg)
	cfg.CallTimeout = orDefault(cfg.CallTimeout, DefaultCallTimeout)
	cfg.StopGrace = orDefault(cfg.StopGrace, DefaultStopGrace)
	if cfg.MaxPayload < 0 {
		bad("MaxPayload is negative")
	}
	if err := cfg.Isolation.resolve(); err != nil {
		errs = append(errs, err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}

	p := &cfg.Policy
	p.StartTimeout = orDefault(p.StartTimeout, DefaultStartTimeout)
	if p.MaxRetries == 0 {
		p.MaxRetries = DefaultMaxRetries
	} else if p.MaxRetries < 0 {
		p.MaxRetries = 0
	}
	b := &p.Backoff
	if b.Base < 0 || b.Max < 0 {
		bad("Backoff durations must not be negative")
	}
	b.Base = orDefault(b.Base, DefaultBackoffBase)
	b.Max = max(orDefault(b.Max, DefaultBackoffMax), b.Base)
	switch {
	case b.Jitter == 0:
		b.Jitter = DefaultBackoffJitter
	case b.Jitter < 0:
		b.Jitter = 0
	case b.Jitter > 1:
		bad("Backoff.Jitter %v is above 1", b.Jitter)
	}
	p.RestartDelay = orDefault(p.RestartDelay, DefaultRestartDelay)
	if p.RestartLimit.Max == 0 {
		p.RestartLimit.Max = DefaultRestartMax
	}
	if p.RestartLimit.Window < 0 {
		bad("RestartLimit.Window is negative")
	}
	p.RestartLimit.Window = orDefault(p.RestartLimit.Window, DefaultRestartWindow)
	hb := &p.Heartbeat
	switch {
	case hb.Interval < 0 || hb.Timeout < 0:
		bad("Heartbeat intervals must not be negative (got Interval %v, Timeout %v)", hb.Interval, hb.Timeout)
	case hb.Interval == 0 && hb.Timeout != 0:
		bad("Heartbeat.Timeout is set but Interval is zero (off)")
	case hb.Interval > 0 && hb.Timeout == 0:
		hb.Timeout = 3 * hb.Interval
	}
	if len(errs) > 0 {
		return cfg, fmt.Errorf("host: invalid config for module %q: %w", cfg.Name, errors.Join(errs...))
	}
	return cfg, nil
}

// orDefault maps zero to def and a negative duration to 0 (off).
func orDefault(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

func orMsgpack(c codec.Codec) codec.Codec {
	if c == nil {
		return codec.Msgpack
	}
	return c
}
