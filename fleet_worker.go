package procxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"iter"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
)

// Subjects of the fleet protocol (docs/PROTOCOL.md, "procxy on a bus").
// A method's subject ends with a hash of its signature, so a caller and a
// worker that disagree on it never meet: the caller gets no responder and
// then asks the workers what they serve, to say what differs.
const (
	subjectObj       = "procxy.obj."
	subjectFunc      = "procxy.func."
	subjectEvt       = "procxy.evt."
	subjectWorkers   = "procxy.workers"      // request: every worker answers with its WorkerInfo
	subjectWorkersUp = "procxy.workers.up"   // a worker started serving (its WorkerInfo)
	subjectWorkersDn = "procxy.workers.down" // a worker stopped serving (its WorkerInfo)
	workerQueue      = "procxy"              // the queue group of every method and function
)

// methodSubject is where calls of a method of the type key go.
func methodSubject(key string, m *method) string {
	return subjectObj + key + "." + m.Name + "." + sigHash(m.Sig)
}

// funcSubject is where calls of the function name go.
func funcSubject(name, sig string) string { return subjectFunc + name + "." + sigHash(sig) }

func sigHash(sig string) string {
	h := fnv.New32a()
	h.Write([]byte(sig))
	return fmt.Sprintf("%08x", h.Sum32())
}

// WorkerInfo describes a worker process: what Serve announces and Workers
// lists.
type WorkerInfo struct {
	ID       string     `json:"id" msgpack:"id"`
	Host     string     `json:"host" msgpack:"host"`
	PID      int        `json:"pid" msgpack:"pid"`
	Version  string     `json:"version,omitempty" msgpack:"version,omitempty"`
	Started  time.Time  `json:"started" msgpack:"started"`
	Types    []TypeInfo `json:"types" msgpack:"types"`
	Funcs    []FuncInfo `json:"funcs" msgpack:"funcs"`
	InFlight int64      `json:"inflight" msgpack:"inflight"` // calls being served when it answered
	Served   uint64     `json:"served" msgpack:"served"`     // calls served since it started
}

// TypeInfo is a type a worker serves and its methods.
type TypeInfo struct {
	Key     string       `json:"key" msgpack:"key"`
	Methods []MethodInfo `json:"methods" msgpack:"methods"`
}

// MethodInfo is a method a worker serves, with its signature as Go writes
// it (without the receiver and the context), e.g. "(int, int) (int, error)".
type MethodInfo struct {
	Name   string `json:"name" msgpack:"name"`
	Sig    string `json:"sig" msgpack:"sig"`
	Stream bool   `json:"stream,omitempty" msgpack:"stream,omitempty"`
}

// FuncInfo is a function made with Func that a worker serves.
type FuncInfo struct {
	Name string `json:"name" msgpack:"name"`
	Sig  string `json:"sig" msgpack:"sig"`
}

// Serves reports whether the worker serves the type or function key.
func (w WorkerInfo) Serves(key string) bool {
	return slices.ContainsFunc(w.Types, func(t TypeInfo) bool { return t.Key == key }) ||
		slices.ContainsFunc(w.Funcs, func(f FuncInfo) bool { return f.Name == key })
}

// WorkerOption configures Serve.
type WorkerOption interface{ applyWorker(*workerOptions) }

type workerOptions struct {
	only     map[string]bool
	version  string
	configs  map[string]any
	parallel int
}

type workerOption func(*workerOptions)

func (f workerOption) applyWorker(o *workerOptions) { f(o) }

// Serving limits a worker to the named types (their keys, as Register and
// Name give them) and functions (their Func names); by default it serves
// every one this executable registers.
func Serving(keys ...string) WorkerOption {
	return workerOption(func(o *workerOptions) {
		if o.only == nil {
			o.only = make(map[string]bool)
		}
		for _, k := range keys {
			o.only[k] = true
		}
	})
}

// WorkerVersion is the version a worker announces (WorkerInfo.Version), for
// the people and tools that list workers.
func WorkerVersion(v string) WorkerOption {
	return workerOption(func(o *workerOptions) { o.version = v })
}

// WorkerConcurrency bounds the calls a worker runs at once, across all
// its types and functions; more wait their turn (their deadlines and
// cancellation still apply). By default every call runs at once, in its
// own goroutine. A CPU-bound worker wants about runtime.GOMAXPROCS(0).
func WorkerConcurrency(n int) WorkerOption {
	return workerOption(func(o *workerOptions) { o.parallel = n })
}

// WorkerConfig is the value passed to the constructor of the type key in
// this worker, as Config is for New.
func WorkerConfig(key string, cfg any) WorkerOption {
	return workerOption(func(o *workerOptions) {
		if o.configs == nil {
			o.configs = make(map[string]any)
		}
		o.configs[key] = cfg
	})
}

// Serve makes this process a worker: it constructs one object of every
// registered type (see Register) and serves their methods, and every
// function made with Func, to the callers on the bus that conn is
// connected to — an ipc server, or NATS through package natsipc — until
// ctx ends. Each method and function is a queue group, so every worker
// that serves it adds capacity, and a call goes to one of them. Callers
// use NewRemote and Function.Via. Calls are served concurrently, so the
// types must be safe for concurrent use.
//
// When ctx ends, Serve stops taking calls, waits for those in flight, and
// returns nil; it returns an error if a type cannot be constructed or
// served. Serve announces the worker on the bus and answers Workers.
func Serve(ctx context.Context, conn *ipc.Conn, opts ...WorkerOption) error {
	var o workerOptions
	for _, opt := range opts {
		opt.applyWorker(&o)
	}
	w := &fleetWorker{conn: conn}
	if o.parallel > 0 {
		w.slots = make(chan struct{}, o.parallel)
	}
	w.info = WorkerInfo{ID: newWorkerID(), PID: os.Getpid(), Version: o.version, Started: time.Now().UTC()}
	w.info.Host, _ = os.Hostname()
	defer w.unsubscribe()
	if err := w.serveTypes(ctx, o); err != nil {
		return err
	}
	if err := w.serveFuncs(o); err != nil {
		return err
	}
	if len(w.subs) == 0 {
		return errors.New("procxy: Serve: nothing to serve (no type registered, no Func made, or Serving matched none)")
	}
	disc, err := conn.Subscribe(subjectWorkers, func(m *ipc.Msg) {
		if m.Reply != "" {
			_ = m.Respond(w.announcement())
		}
	})
	if err != nil {
		return fmt.Errorf("procxy: Serve: %w", err)
	}
	_ = conn.Publish(subjectWorkersUp, w.announcement())
	<-ctx.Done()
	w.unsubscribe() // no new calls
	w.mu.Lock()
	w.stopping = true // nor the ones already on their way to a handler
	w.mu.Unlock()
	w.calls.Wait()
	_ = conn.Publish(subjectWorkersDn, w.announcement())
	_ = disc.Unsubscribe()
	_ = conn.Flush(context.WithoutCancel(ctx))
	return nil
}

// fleetWorker is one Serve.
type fleetWorker struct {
	conn     *ipc.Conn
	info     WorkerInfo // fixed once serving starts, but for the counters
	subs     []*ipc.Subscription
	mu       sync.Mutex // guards stopping, and calls.Add against calls.Wait
	stopping bool       // Serve is ending: calls that still arrive are turned away
	calls    sync.WaitGroup
	inflight atomic.Int64
	served   atomic.Uint64
	unsubs   sync.Once
	slots    chan struct{} // WorkerConcurrency; nil: no bound
}

func newWorkerID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (w *fleetWorker) announcement() []byte {
	info := w.info
	info.InFlight, info.Served = w.inflight.Load(), w.served.Load()
	b, _ := msgpackCodec.Append(nil, info)
	return b
}

func (w *fleetWorker) unsubscribe() {
	w.unsubs.Do(func() {
		for _, s := range w.subs {
			_ = s.Unsubscribe()
		}
	})
}

// track counts a call while it is served, once it has a slot
// (WorkerConcurrency); it fails when ctx ends while the call waits for one.
func (w *fleetWorker) track(ctx context.Context) (func(), error) {
	if w.slots != nil {
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	w.mu.Lock()
	if w.stopping {
		w.mu.Unlock()
		if w.slots != nil {
			<-w.slots
		}
		return nil, errWorkerStopping
	}
	w.calls.Add(1)
	w.mu.Unlock()
	w.inflight.Add(1)
	return func() {
		w.inflight.Add(-1)
		w.served.Add(1)
		w.calls.Done()
		if w.slots != nil {
			<-w.slots
		}
	}, nil
}

var handleOpts = []ipc.HandleOption{ipc.Queue(workerQueue), ipc.WithCodec(codec.Raw)}

func (w *fleetWorker) serveTypes(ctx context.Context, o workerOptions) error {
	registry.Lock()
	var ctors []*ctor
	for key, c := range registry.byKey {
		if key != funcHostKey && (o.only == nil || o.only[key]) {
			ctors = append(ctors, c)
		}
	}
	registry.Unlock()
	slices.SortFunc(ctors, func(a, b *ctor) int { return strings.Compare(a.key, b.key) })
	for _, c := range ctors {
		var cfg []byte
		if v, ok := o.configs[c.key]; ok {
			var err error
			if cfg, err = msgpackCodec.Append(nil, v); err != nil {
				return fmt.Errorf("procxy: Serve: config of %s: %w", c.key, err)
			}
		}
		obj, err := c.construct(ctx, cfg)
		if err != nil {
			return fmt.Errorf("procxy: Serve: construct %s: %w", c.key, err)
		}
		if e, ok := obj.(interface{ procxyEmitter() *Emitter }); ok {
			evt := subjectEvt + c.key
			e.procxyEmitter().attach(func(name string, v any) error {
				b, err := msgpackCodec.Append(nil, event{Name: name, Value: v})
				if err != nil {
					return fmt.Errorf("procxy: event %s: %w", name, err)
				}
				return w.conn.Publish(evt, b)
			})
		}
		recv := reflect.ValueOf(obj)
		ti := TypeInfo{Key: c.key}
		for _, m := range c.methods {
			if m.Problem != "" {
				continue
			}
			subj := methodSubject(c.key, m)
			if !ipc.ValidLiteral(subj) {
				return fmt.Errorf("procxy: Serve: %s cannot be served on a bus: %q is not a valid subject; register it with procxy.Name", c.key, subj)
			}
			if err := w.serveMethod(subj, m, recv); err != nil {
				return fmt.Errorf("procxy: Serve: %s.%s: %w", c.key, m.Name, err)
			}
			ti.Methods = append(ti.Methods, MethodInfo{Name: m.Name, Sig: m.Sig, Stream: m.Stream})
		}
		w.info.Types = append(w.info.Types, ti)
	}
	return nil
}

// errWorkerStopping answers a call that reached a worker after its Serve
// began to end; the call never ran, so the caller may send it again.
var errWorkerStopping = &RemoteError{Name: "WorkerStopping", Code: codeWorkerStopping,
	Message: "procxy: the worker is stopping"}

const codeWorkerStopping = "worker_stopping"

// errStopped ends a stream whose requester stopped reading.
var errStopped = errors.New("procxy: stream stopped")

func (w *fleetWorker) serveMethod(subj string, m *method, recv reflect.Value) error {
	var sub *ipc.Subscription
	var err error
	if !m.Stream {
		sub, err = ipc.Handle(w.conn, subj, func(ctx context.Context, req []byte) ([]byte, error) {
			done, err := w.track(ctx)
			if err != nil {
				return nil, err
			}
			defer done()
			v, err := m.serve(ctx, recv, nil, rpc.Payload{Bytes: req})
			if err != nil {
				return nil, err
			}
			return encodeResult(m.Name, v)
		}, handleOpts...)
	} else {
		sub, err = ipc.HandleStream(w.conn, subj, func(ctx context.Context, req []byte) iter.Seq2[[]byte, error] {
			return func(yield func([]byte, error) bool) {
				done, err := w.track(ctx)
				if err != nil {
					yield(nil, err)
					return
				}
				defer done()
				err = m.serveStream(ctx, recv, nil, rpc.Payload{Bytes: req}, func(v any) error {
					b, err := encodeResult(m.Name, v)
					if err != nil {
						return err
					}
					if !yield(b, nil) {
						return errStopped
					}
					return nil
				})
				if err != nil && !errors.Is(err, errStopped) {
					yield(nil, err)
				}
			}
		}, handleOpts...)
	}
	if err != nil {
		return err
	}
	w.subs = append(w.subs, sub)
	return nil
}

// encodeResult encodes a method's result, or says which method returned
// a value that cannot travel.
func encodeResult(name string, v any) ([]byte, error) {
	b, err := msgpackCodec.Append(nil, v)
	if err != nil {
		return nil, &RemoteError{Name: "EncodeError", Code: rpc.CodeBadResponse,
			Message: fmt.Sprintf("%s: cannot encode the result %T: %v", name, v, err)}
	}
	return b, nil
}

func (w *fleetWorker) serveFuncs(o workerOptions) error {
	funcs.Lock()
	var names []string
	for name := range funcs.byName {
		if o.only == nil || o.only[name] {
			names = append(names, name)
		}
	}
	funcs.Unlock()
	slices.Sort(names)
	for _, name := range names {
		funcs.Lock()
		f := funcs.byName[name]
		funcs.Unlock()
		subj := funcSubject(name, f.sig)
		if !ipc.ValidLiteral(subj) {
			return fmt.Errorf("procxy: Serve: Func %q cannot be served on a bus: %q is not a valid subject", name, subj)
		}
		sub, err := ipc.Handle(w.conn, subj, func(ctx context.Context, req []byte) ([]byte, error) {
			done, err := w.track(ctx)
			if err != nil {
				return nil, err
			}
			defer done()
			v, err := f.fn(ctx, req)
			if err != nil {
				return nil, err
			}
			return encodeResult(name, v)
		}, handleOpts...)
		if err != nil {
			return fmt.Errorf("procxy: Serve: Func %q: %w", name, err)
		}
		w.subs = append(w.subs, sub)
		w.info.Funcs = append(w.info.Funcs, FuncInfo{Name: name, Sig: f.sig})
	}
	return nil
}
