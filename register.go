package procxy

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"sync"
)

var (
	ctxType   = reflect.TypeFor[context.Context]()
	errorType = reflect.TypeFor[error]()
)

// ctor is a registered constructor.
type ctor struct {
	key     string
	typ     reflect.Type // T; methods are looked up on *T
	fn      reflect.Value
	withCtx bool         // fn takes a context first
	cfg     reflect.Type // the config parameter's type, or nil
	withErr bool         // fn returns (…, error)
	methods []*method    // sorted by name; ids from firstMethodID
	byName  map[string]*method
	ifOnce  sync.Once // resolveInterfaces
}

// registry holds the constructors of this executable. It is filled by
// Register, normally from init functions, before Main runs.
var registry struct {
	sync.Mutex
	byKey map[string]*ctor
}

// RegisterOption configures Register.
type RegisterOption interface{ applyRegister(*ctor) }

// Name sets the key a type is registered and looked up under, instead of
// its import path and name. Use the same Name with Register in the child's
// executable and with New in the parent.
func Name(key string) interface {
	RegisterOption
	Option
} {
	return nameOption(key)
}

type nameOption string

func (n nameOption) applyRegister(c *ctor) { c.key = string(n) }
func (n nameOption) apply(o *options)      { o.key = string(n) }

// keyOf is the default key of T: its import path and name.
func keyOf(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.PkgPath() == "" {
		return t.String()
	}
	return t.PkgPath() + "." + t.Name()
}

// Register makes T constructible in child processes by New[T]. constructor is
// nil (the child uses new(T)) or a function returning *T, optionally with an
// error, and taking nothing, one config value, or a context.Context and one
// config value:
//
//	func() *T
//	func(cfg C) (*T, error)
//	func(ctx context.Context, cfg C) (*T, error)
//
// The config value travels from New's [Config] option, msgpack-encoded.
// Register is meant for init functions: the child is the same executable
// re-run, so every type registered in the parent is registered in the child.
// It panics on a constructor of another shape or a duplicate key.
func Register[T any](constructor any, opts ...RegisterOption) {
	c, err := newCtor(reflect.TypeFor[T](), constructor)
	if err != nil {
		panic(err)
	}
	for _, o := range opts {
		o.applyRegister(c)
	}
	registry.Lock()
	defer registry.Unlock()
	if registry.byKey == nil {
		registry.byKey = make(map[string]*ctor)
	}
	if _, dup := registry.byKey[c.key]; dup {
		panic(fmt.Sprintf("procxy: %s registered twice", c.key))
	}
	registry.byKey[c.key] = c
}

func lookup(key string) *ctor {
	registry.Lock()
	defer registry.Unlock()
	return registry.byKey[key]
}

func newCtor(t reflect.Type, fn any) (*ctor, error) {
	if t.Kind() == reflect.Pointer || t.Kind() == reflect.Interface {
		return nil, fmt.Errorf("procxy: Register[%v]: register the element type, not a pointer or interface", t)
	}
	c := &ctor{key: keyOf(t), typ: t}
	if fn != nil {
		v := reflect.ValueOf(fn)
		ft := v.Type()
		bad := fmt.Errorf("procxy: Register[%v]: constructor %v must be func([ctx,] [cfg]) (*%v[, error])", t, ft, t)
		if ft.Kind() != reflect.Func || ft.IsVariadic() || ft.NumIn() > 2 || ft.NumOut() < 1 || ft.NumOut() > 2 {
			return nil, bad
		}
		if ft.Out(0) != reflect.PointerTo(t) || (ft.NumOut() == 2 && ft.Out(1) != errorType) {
			return nil, bad
		}
		in := 0
		if ft.NumIn() > 0 && ft.In(0) == ctxType {
			c.withCtx = true
			in = 1
		}
		if ft.NumIn()-in > 1 {
			return nil, bad
		}
		if ft.NumIn()-in == 1 {
			c.cfg = ft.In(in)
		}
		c.fn, c.withErr = v, ft.NumOut() == 2
	}
	pt := reflect.PointerTo(t)
	c.byName = make(map[string]*method)
	_, emits := reflect.New(t).Interface().(interface{ procxyEmitter() *Emitter })
	for i := range pt.NumMethod() {
		rm := pt.Method(i)
		if emits && rm.Name == "Emit" {
			continue // promoted from Emitter: the child's to call, not the parent's
		}
		m := analyze(rm)
		if vm, ok := t.MethodByName(rm.Name); ok {
			m.pc = vm.Func.Pointer() // a value method: not the pointer wrapper, which has no source line
		}
		c.methods = append(c.methods, m)
	}
	sort.Slice(c.methods, func(i, j int) bool { return c.methods[i].Name < c.methods[j].Name })
	for i, m := range c.methods {
		m.ID = firstMethodID + uint16(i)
		c.byName[m.Name] = m
	}
	return c, nil
}

// construct builds a new T in this process from an encoded config.
func (c *ctor) construct(ctx context.Context, cfg []byte) (any, error) {
	if !c.fn.IsValid() {
		return reflect.New(c.typ).Interface(), nil
	}
	var args []reflect.Value
	if c.withCtx {
		args = append(args, reflect.ValueOf(ctx))
	}
	if c.cfg != nil {
		p := reflect.New(c.cfg)
		if len(cfg) > 0 {
			if err := msgpackCodec.Unmarshal(cfg, p.Interface()); err != nil {
				return nil, fmt.Errorf("procxy: decode config of %s into %v: %w", c.key, c.cfg, err)
			}
		}
		args = append(args, p.Elem())
	}
	out := c.fn.Call(args)
	if c.withErr && !out[1].IsNil() {
		return nil, out[1].Interface().(error)
	}
	if out[0].IsNil() {
		return nil, fmt.Errorf("procxy: constructor of %s returned nil", c.key)
	}
	return out[0].Interface(), nil
}
