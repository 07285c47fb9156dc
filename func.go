package procxy

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/procxy/procxy/rpc/codec"
)

// funcHost is the type children construct to run Funcs.
type funcHost struct{}

const funcHostKey = "procxy.func"

func init() {
	Register[funcHost](nil, Name(funcHostKey))
	// Invoke's input is raw, but a func input travels as a callback: the
	// parent makes one of it (wireArgs), and the Func decodes it.
	lookup(funcHostKey).byName["Invoke"].CbArgs = []int{1}
}

// funcs holds the functions made by Func, by name.
var funcs struct {
	sync.Mutex
	byName map[string]registeredFunc
}

// registeredFunc is a Func as children and workers run it.
type registeredFunc struct {
	fn  func(ctx context.Context, arg []byte) (any, error)
	sig string // "(A) R", the signature callers must agree on
}

// Invoke runs the function registered under name (in the child).
func (funcHost) Invoke(ctx context.Context, name string, arg msgpack.RawMessage) (any, error) {
	funcs.Lock()
	f, ok := funcs.byName[name]
	funcs.Unlock()
	if !ok {
		return nil, &RemoteError{Code: CodeNotRegistered, Name: "NotRegistered",
			Message: fmt.Sprintf("function %q is not registered in the child; call procxy.Func at package level", name)}
	}
	return f.fn(ctx, arg)
}

// Function is a function that can run in child processes. Make one with
// Func at package level, so that the child, which is the same executable,
// knows it too.
type Function[A, R any] struct {
	name string
	fn   func(context.Context, A) (R, error)
	size int
	opts []Option

	via *remoteFunc // Via: calls go to workers on a bus, not to children

	mu   sync.Mutex
	pool *Pool[funcHost] // started by the first Call; guarded by mu
}

// Func registers fn under name and returns it as a Function: Call runs it in
// a pool of child processes (started on first use), Local runs it here.
// Options: PoolSize, and those of New (Timeout, Env, Retries, …).
// Func panics if name is used twice.
func Func[A, R any](name string, fn func(ctx context.Context, arg A) (R, error), opts ...Option) *Function[A, R] {
	funcs.Lock()
	defer funcs.Unlock()
	if funcs.byName == nil {
		funcs.byName = make(map[string]registeredFunc)
	}
	if _, dup := funcs.byName[name]; dup {
		panic(fmt.Sprintf("procxy: Func %q registered twice", name))
	}
	sig := fmt.Sprintf("(%v) %v", reflect.TypeFor[A](), reflect.TypeFor[R]())
	pc := reflect.ValueOf(fn).Pointer()
	funcs.byName[name] = registeredFunc{sig: sig, fn: func(ctx context.Context, raw []byte) (any, error) {
		var a A
		if at := reflect.TypeFor[A](); at.Kind() == reflect.Func {
			// A func input travels as a callback (see Invoke's CbArgs).
			var d codec.ArrayDecoder
			arr := append([]byte{0x91}, raw...) // decodeCallback reads an array element
			if _, err := d.Reset(arr, false); err == nil {
				if err := decodeCallback(ctx, &d, reflect.ValueOf(&a).Elem(), "the input of Func "+name); err != nil {
					return nil, argError("%s", argProblem(1, at, err))
				}
			}
		} else if len(raw) > 0 && raw[0] != 0xc0 { // nil arrives as A's zero value
			if err := msgpackCodec.Unmarshal(raw, &a); err != nil {
				return nil, argError("%s", argProblem(1, reflect.TypeFor[A](), err))
			}
		}
		r, err := fn(ctx, a)
		if err != nil {
			return nil, crossed(pc, err)
		}
		return r, nil
	}}
	f := &Function[A, R]{name: name, fn: fn, size: 1}
	for _, o := range opts {
		if ps, ok := o.(poolSize); ok {
			f.size = int(ps)
		} else {
			f.opts = append(f.opts, o)
		}
	}
	return f
}

type poolSize int

func (poolSize) apply(*options) {}

// PoolSize sets how many children a Func runs in; the default is 1.
func PoolSize(n int) Option { return poolSize(n) }

// Name returns the name the function was registered under.
func (f *Function[A, R]) Name() string { return f.name }

// Local calls the function in this process.
func (f *Function[A, R]) Local(ctx context.Context, arg A) (R, error) { return f.fn(ctx, arg) }

// Call runs the function in a child process, starting the pool on first
// use, or on a worker when f came from Via.
func (f *Function[A, R]) Call(ctx context.Context, arg A) (R, error) {
	if f.via != nil {
		return Call[R](ctx, f.via, f.name, arg)
	}
	var zero R
	pl, err := f.start(ctx)
	if err != nil {
		return zero, err
	}
	r, err := Call[R](ctx, pl, "Invoke", f.name, arg)
	if me, ok := err.(*methodError); ok {
		me.where = "Func " + f.name
		if rest, ok := strings.CutPrefix(me.re.Message, "argument 2 "); ok && me.re.Code == CodeBadArguments {
			re := *me.re // the input is Invoke's second argument: name it as the caller knows it
			re.Message = "the input " + rest
			me.re = &re
		}
	}
	return r, err
}

func (f *Function[A, R]) start(ctx context.Context) (*Pool[funcHost], error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.pool == nil {
		o := newOptions(funcHostKey, f.opts)
		o.fromEnv(f.name) // PROCXY_DEBUG and PROCXY_ATTACH name a Func by its name
		pl, err := newPool[funcHost](ctx, f.size, o)
		if err != nil {
			return nil, fmt.Errorf("procxy: start Func %q: %w", f.name, err)
		}
		f.pool = pl
	}
	return f.pool, nil
}

// Close stops the function's children, after the calls in flight. A later
// Call starts them again.
func (f *Function[A, R]) Close() error {
	f.mu.Lock()
	pl := f.pool
	f.pool = nil
	f.mu.Unlock()
	if pl == nil {
		return nil
	}
	return pl.Close()
}
