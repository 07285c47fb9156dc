package procxy

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/procxy/procxy/internal/backoff"
	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/rpc/codec"
)

var (
	// ErrNoWorker means no worker on the bus serves the method or function
	// called, with the signature the caller has; the error's message says
	// what the workers serve instead. It also matches ipc.ErrNoResponders.
	// A call that reached a worker while its Serve was ending fails with it
	// too: it never ran.
	ErrNoWorker = errors.New("procxy: no worker serves the call")
	// ErrWorkerGone means the worker serving a call went away (it died,
	// or its connection broke) before it answered; the call may or may
	// not have run. Methods marked Idempotent are retried on another
	// worker when the target has Retries.
	ErrWorkerGone = errors.New("procxy: the worker went away before answering")
)

// DefaultKeepalive is how often a worker tells a caller that a call is
// still running, on buses that do not follow requests to their responder
// (NATS): three silent intervals fail the call with ErrWorkerGone.
const DefaultKeepalive = time.Second

// Keepalive sets how often a worker signals that a call it serves is
// still running, on buses that do not notice a responder's death
// themselves (NATS); the default is DefaultKeepalive, and zero or
// negative turns it off (a dead worker's calls then end at their
// deadline). The ipc server reports a dead worker at once, without it.
func Keepalive(d time.Duration) Option {
	return optionFunc(func(o *options) { o.keepalive, o.hasKeepalive = d, true })
}

// Remote is a T whose methods run on worker processes (Serve) reached
// through a message bus: the ipc server, or NATS through package natsipc.
// Call it with Call, CallInto, Stream and OnEvent, exactly as a *Proxy. Each
// call goes to one of the workers serving T (a queue group), so adding a
// worker adds capacity; workers share nothing, so T should keep no state
// between calls that callers rely on. A Remote is safe for concurrent use.
type Remote[T any] struct {
	bus    *busEndpoint
	events listeners

	mu     sync.Mutex
	evtSub *ipc.Subscription // subscribed on the first OnEvent; guarded by mu
	closed bool              // guarded by mu
}

// NewRemote returns a Remote for T on conn. It starts nothing and sends
// nothing: calls find the workers serving T when they are made (see
// WaitWorkers to wait for some). Options: Name (the key T is served
// under), Timeout, Retries, Idempotent, Keepalive and Logger; the options
// about child processes do not apply.
func NewRemote[T any](conn *ipc.Conn, opts ...Option) (*Remote[T], error) {
	t := reflect.TypeFor[T]()
	o := newOptions(keyOf(t), opts)
	c, err := newCtor(t, nil)
	if err != nil {
		return nil, err
	}
	b := newBusEndpoint(conn, o)
	for _, m := range c.methods {
		b.methods[m.Name] = m
		if m.Problem == "" {
			b.subjects[m.Name] = methodSubject(o.key, m)
			if !ipc.ValidLiteral(b.subjects[m.Name]) {
				return nil, fmt.Errorf("procxy: NewRemote[%v]: %q is not a valid subject; use procxy.Name to give %s a key without spaces or wildcards", t, b.subjects[m.Name], o.key)
			}
		}
	}
	r := &Remote[T]{bus: b}
	r.events.log = o.logger.Warn
	return r, nil
}

func (r *Remote[T]) acquire(context.Context) (endpoint, func(), error) {
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, nil, ErrClosed
	}
	return r.bus, noRelease, nil
}

func (r *Remote[T]) retryLimit() int { return r.bus.o.retries }
func (*Remote[T]) of(*T)             {}

// listen subscribes to the type's events on the first listener: every
// worker's events reach every Remote of the type.
func (r *Remote[T]) listen(name string, fn func(msgpack.RawMessage) error) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.evtSub == nil && !r.closed {
		sub, err := r.bus.conn.Subscribe(subjectEvt+r.bus.o.key, func(m *ipc.Msg) {
			var ev eventIn
			if err := msgpackCodec.Unmarshal(m.Data, &ev); err != nil {
				r.events.log("procxy: malformed event", "type", r.bus.o.key, "err", err)
				return
			}
			r.events.dispatch(context.Background(), ev)
		})
		if err != nil {
			r.events.log("procxy: cannot subscribe to events", "type", r.bus.o.key, "err", err)
		}
		r.evtSub = sub
	}
	return r.events.add(name, fn)
}

// Methods lists T's methods that can be called, by name.
func (r *Remote[T]) Methods() []string {
	names := make([]string, 0, len(r.bus.subjects))
	for name := range r.bus.subjects {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// Close stops event delivery; later calls fail with ErrClosed. It does
// not close the connection, which the caller owns.
func (r *Remote[T]) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	if r.evtSub != nil {
		r.evtSub.Unsubscribe()
		r.evtSub = nil
	}
	return nil
}

// Via returns f with its calls going to the workers (Serve) on the bus
// conn is connected to, instead of to child processes of this one. Local
// still runs it here. The Function's options that apply to a Remote
// (Timeout, Retries, Keepalive) apply.
func (f *Function[A, R]) Via(conn *ipc.Conn) *Function[A, R] {
	o := newOptions(f.name, f.opts)
	b := newBusEndpoint(conn, o)
	b.single = true
	sig := fmt.Sprintf("(%v) %v", reflect.TypeFor[A](), reflect.TypeFor[R]())
	b.methods[f.name] = &method{Name: f.name, NumIn: 1, Sig: sig}
	b.subjects[f.name] = funcSubject(f.name, sig)
	return &Function[A, R]{name: f.name, fn: f.fn, size: f.size, opts: f.opts, via: &remoteFunc{b}}
}

// remoteFunc is the target of a Function's calls on a bus.
type remoteFunc struct{ bus *busEndpoint }

func (rf *remoteFunc) acquire(context.Context) (endpoint, func(), error) {
	return rf.bus, noRelease, nil
}
func (rf *remoteFunc) retryLimit() int { return rf.bus.o.retries }
func (*remoteFunc) of(*funcHost)       {}
func (*remoteFunc) listen(string, func(msgpack.RawMessage) error) func() {
	return func() {}
}

// busEndpoint sends calls to the workers on a bus: each method (or the
// function) has its subject, and every call is a request to it.
type busEndpoint struct {
	conn     *ipc.Conn
	o        options
	methods  map[string]*method // by name; the caller's view of the type
	subjects map[string]string  // callable methods' subjects, by name
	single   bool               // a Func: its one argument travels alone, not in an array
	reqOpts  []ipc.RequestOption
}

func newBusEndpoint(conn *ipc.Conn, o options) *busEndpoint {
	b := &busEndpoint{conn: conn, o: o, methods: make(map[string]*method), subjects: make(map[string]string)}
	b.reqOpts = []ipc.RequestOption{ipc.WithCodec(codec.Raw)}
	ka := DefaultKeepalive
	if o.hasKeepalive {
		ka = o.keepalive
	}
	if ka > 0 && !conn.Info().TracksRequests {
		b.reqOpts = append(b.reqOpts, ipc.Keepalive(ka))
	}
	return b
}

// request encodes the arguments of a call to name and returns its subject.
func (b *busEndpoint) request(name string, args []any, stream bool) (string, []byte, error) {
	m, err := findMethod(b.methods, b.o.key, name, len(args), stream)
	if err != nil {
		return "", nil, err
	}
	var data []byte
	switch {
	case b.single:
		data, err = msgpackCodec.Append(nil, args[0])
	case len(args) == 0:
		data = []byte{0x90} // an empty array
	default:
		data, err = msgpackCodec.Append(nil, m.errorArgs(args))
	}
	if err != nil {
		return "", nil, b.fromMethod(name, unsendable(args, err))
	}
	return b.subjects[name], data, nil
}

func (b *busEndpoint) callOnce(ctx context.Context, name string, args []any, out any) error {
	subj, data, err := b.request(name, args, false)
	if err != nil {
		return err
	}
	if b.o.callTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.o.callTimeout)
		defer cancel()
	}
	resp, err := ipc.Call[[]byte](ctx, b.conn, subj, data, b.reqOpts...)
	if err != nil {
		return b.explain(ctx, name, err)
	}
	if out == nil {
		return nil
	}
	if err := msgpackCodec.Unmarshal(resp, out); err != nil {
		return b.fromMethod(name, resultError(out, err))
	}
	return nil
}

func (b *busEndpoint) openStream(ctx context.Context, name string, args []any) (itemStream, error) {
	subj, data, err := b.request(name, args, true)
	if err != nil {
		return nil, err
	}
	next, stop := iter.Pull2(ipc.Stream[[]byte](ctx, b.conn, subj, data, b.reqOpts...))
	return &busStream{b: b, ctx: ctx, name: name, next: next, stop: stop}, nil
}

// busStream is the items of a streamed call on a bus.
type busStream struct {
	b    *busEndpoint
	ctx  context.Context
	name string
	next func() ([]byte, error, bool)
	stop func()
	err  error
}

func (s *busStream) Next(v any) bool {
	if s.err != nil {
		return false
	}
	item, err, ok := s.next()
	switch {
	case !ok:
		return false
	case err != nil:
		s.err = s.b.explain(s.ctx, s.name, err)
		return false
	}
	if err := msgpackCodec.Unmarshal(item, v); err != nil {
		s.err = fmt.Errorf("procxy: %s.%s: an item does not decode into %T: %w", s.b.o.key, s.name, v, err)
		s.stop()
		return false
	}
	return true
}

func (s *busStream) Err() error   { return s.err }
func (s *busStream) Close() error { s.stop(); return nil }

// explain turns a request's failure into what a caller of the method
// needs to know: the method's own error as it is, a timeout as a
// timeout, a missing worker with what the workers serve instead.
func (b *busEndpoint) explain(ctx context.Context, name string, err error) error {
	var re *RemoteError
	switch {
	case errors.As(err, &re) && re.Code == codeWorkerStopping:
		return &fleetError{fmt.Sprintf("procxy: %s.%s: the worker was stopping and did not run the call", b.o.key, name),
			[]error{ErrNoWorker, re}}
	case errors.As(err, &re):
		return b.fromMethod(name, re)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil && b.o.callTimeout > 0:
		return fmt.Errorf("procxy: %s.%s timed out after %v: %w", b.o.key, name, b.o.callTimeout, context.DeadlineExceeded)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("procxy: %s.%s: %w", b.o.key, name, ctx.Err())
	case errors.Is(err, ipc.ErrNoResponders):
		return &fleetError{fmt.Sprintf("procxy: %s.%s: %s", b.o.key, name, b.noWorker(ctx, name)),
			[]error{ErrNoWorker, ipc.ErrNoResponders}}
	case errors.Is(err, ipc.ErrResponderGone), errors.Is(err, ipc.ErrConnectionLost):
		return &fleetError{fmt.Sprintf("procxy: %s.%s: the worker went away before answering (%v)", b.o.key, name, err),
			[]error{ErrWorkerGone, err}}
	}
	return fmt.Errorf("procxy: %s.%s: %w", b.o.key, name, err)
}

// fromMethod names the method (or the function) in a method's error.
func (b *busEndpoint) fromMethod(name string, err error) error {
	if re, ok := err.(*RemoteError); ok && b.single {
		return &methodError{where: "Func " + name, re: re}
	}
	return fromMethod(b.o.key, name, err)
}

// fleetError is an error whose message says it all and which matches
// the sentinels it carries.
type fleetError struct {
	msg  string
	errs []error
}

func (e *fleetError) Error() string   { return e.msg }
func (e *fleetError) Unwrap() []error { return e.errs }

// noWorker asks the workers on the bus what they serve, to say why none
// serves name: none serves the type, or they serve another version.
func (b *busEndpoint) noWorker(ctx context.Context, name string) string {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 250*time.Millisecond)
	defer cancel()
	ws, _ := Workers(ctx, b.conn)
	want := b.methods[name]
	var diffs []string
	for _, w := range ws {
		if b.single {
			for _, f := range w.Funcs {
				if f.Name == name {
					diffs = append(diffs, fmt.Sprintf("worker %s%s serves %s%s", w.ID, w.versionNote(), name, f.Sig))
				}
			}
			continue
		}
		for _, t := range w.Types {
			if t.Key != b.o.key {
				continue
			}
			i := slices.IndexFunc(t.Methods, func(m MethodInfo) bool { return m.Name == name })
			if i < 0 {
				var have []string
				for _, m := range t.Methods {
					have = append(have, m.Name)
				}
				diffs = append(diffs, fmt.Sprintf("worker %s%s has no method %s (it has %s)", w.ID, w.versionNote(), name, strings.Join(have, ", ")))
			} else {
				diffs = append(diffs, fmt.Sprintf("worker %s%s has %s%s", w.ID, w.versionNote(), name, t.Methods[i].Sig))
			}
		}
	}
	if len(diffs) == 0 {
		return "no worker on the bus serves " + b.o.key
	}
	return fmt.Sprintf("no worker serves %s%s: %s", name, want.Sig, strings.Join(diffs, "; "))
}

func (w WorkerInfo) versionNote() string {
	if w.Version == "" {
		return ""
	}
	return " (version " + w.Version + ")"
}

// busRetry is the pause before a bus call goes again: 50 ms doubling up to
// 1 s, without jitter.
var busRetry = backoff.Exponential{Base: 50 * time.Millisecond, Max: time.Second}

// retryable: a call that reached no worker never ran, so it may go again
// (after a pause: workers may be reconnecting); one whose worker went away
// may have run, so only an idempotent method goes again. attempt counts
// from 0.
func (b *busEndpoint) retryable(err error, name string, attempt int) (time.Duration, bool) {
	wait := busRetry.Delay(attempt+1, 0)
	switch {
	case errors.Is(err, ErrNoWorker):
		return wait, true
	case errors.Is(err, ErrWorkerGone):
		return wait, b.o.isIdempotent(name)
	}
	return 0, false
}

// Workers asks every worker on the bus what it serves and returns their
// answers, sorted by host and pid. It waits until ctx ends or, without a
// deadline, a quarter of a second after the last answer.
func Workers(ctx context.Context, conn *ipc.Conn) ([]WorkerInfo, error) {
	byID := make(map[string]WorkerInfo)
	err := collectWorkers(ctx, conn, 250*time.Millisecond, func(w WorkerInfo, _ bool) bool {
		byID[w.ID] = w
		return false
	})
	ws := slices.Collect(mapValues(byID))
	slices.SortFunc(ws, func(a, b WorkerInfo) int {
		if c := strings.Compare(a.Host, b.Host); c != 0 {
			return c
		}
		return a.PID - b.PID
	})
	return ws, err
}

// WaitWorkers waits until at least n workers serve key (a type's key or a
// Func's name) and returns them, or fails when ctx ends first.
func WaitWorkers(ctx context.Context, conn *ipc.Conn, key string, n int) ([]WorkerInfo, error) {
	if n <= 0 {
		return nil, nil
	}
	serving := make(map[string]WorkerInfo)
	done := false
	err := collectWorkers(ctx, conn, 0, func(w WorkerInfo, up bool) bool {
		if up && w.Serves(key) {
			serving[w.ID] = w
		} else {
			delete(serving, w.ID)
		}
		done = len(serving) >= n
		return done
	})
	ws := slices.Collect(mapValues(serving))
	if done {
		return ws, nil
	}
	if err == nil {
		err = ctx.Err()
	}
	return ws, fmt.Errorf("procxy: %d of %d workers serving %s: %w", len(ws), n, key, err)
}

func mapValues[K comparable, V any](m map[K]V) iter.Seq[V] {
	return func(yield func(V) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

// collectWorkers listens to workers' announcements and asks every worker
// to answer, calling each until it returns true. With wait > 0 it stops
// that long after the last answer when ctx has no deadline, and at the
// deadline when it has one; with wait 0 it asks again every second until
// ctx ends.
func collectWorkers(ctx context.Context, conn *ipc.Conn, wait time.Duration, each func(w WorkerInfo, up bool) bool) error {
	got := make(chan workerNews, 64)
	stop := make(chan struct{})
	defer close(stop)
	listen := func(subj string, up bool) (*ipc.Subscription, error) {
		return conn.Subscribe(subj, func(m *ipc.Msg) {
			var w WorkerInfo
			if msgpackCodec.Unmarshal(m.Data, &w) == nil {
				select {
				case got <- workerNews{w, up}:
				case <-stop:
				}
			}
		})
	}
	inbox := conn.NewInbox()
	for _, s := range []struct {
		subj string
		up   bool
	}{{inbox, true}, {subjectWorkersUp, true}, {subjectWorkersDn, false}} {
		sub, err := listen(s.subj, s.up)
		if err != nil {
			return fmt.Errorf("procxy: list workers: %w", err)
		}
		defer sub.Unsubscribe()
	}
	ask := func() error {
		return conn.PublishMsg(&ipc.Msg{Subject: subjectWorkers, Reply: inbox})
	}
	if err := conn.Flush(ctx); err != nil {
		return fmt.Errorf("procxy: list workers: %w", err)
	}
	if err := ask(); err != nil {
		return fmt.Errorf("procxy: list workers: %w", err)
	}
	_, hasDeadline := ctx.Deadline()
	period := wait
	if wait == 0 || hasDeadline {
		period = time.Second
	}
	t := time.NewTimer(period)
	defer t.Stop()
	for {
		select {
		case n := <-got:
			if each(n.w, n.up) {
				return nil
			}
			if wait > 0 && !hasDeadline {
				t.Reset(wait)
			}
		case <-t.C:
			if wait > 0 && !hasDeadline {
				return nil
			}
			if err := ask(); err != nil {
				return fmt.Errorf("procxy: list workers: %w", err)
			}
			t.Reset(period)
		case <-ctx.Done():
			if hasDeadline && errors.Is(ctx.Err(), context.DeadlineExceeded) && wait > 0 {
				return nil // listed until the deadline, as asked
			}
			return ctx.Err()
		}
	}
}

type workerNews struct {
	w  WorkerInfo
	up bool
}
