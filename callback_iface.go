package procxy

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
)

// CallbackCaller calls a method of the value a parent passed for an
// interface argument: the method runs in the parent, with args, and its
// value result (if any) is decoded into out (a pointer, or nil). The
// method's error comes back as the error, with its identity, as from a
// func callback.
type CallbackCaller func(ctx context.Context, method string, out any, args ...any) error

// RegisterInterface lets a value of the interface type I be passed as a
// method argument: the method in the child receives the I that adapt
// returns, whose methods call the parent's value through call — write
// each one as a line that calls call with its name and arguments:
//
//	type Logger interface{ Log(ctx context.Context, msg string) error }
//
//	type remoteLogger struct{ call procxy.CallbackCaller }
//
//	func (l remoteLogger) Log(ctx context.Context, msg string) error {
//		return l.call(ctx, "Log", nil, msg)
//	}
//
//	func init() {
//		procxy.RegisterInterface(func(call procxy.CallbackCaller) Logger { return remoteLogger{call} })
//	}
//
// As with a func argument, the parent's value can be called until the call
// that passed it returns, and ErrCallbackExpired after. Register it in an
// init function, like the types that take it. It panics if I is not an
// interface type.
func RegisterInterface[I any](adapt func(call CallbackCaller) I) {
	t := reflect.TypeFor[I]()
	if t.Kind() != reflect.Interface || t.NumMethod() == 0 {
		panic(fmt.Sprintf("procxy: RegisterInterface[%v]: want an interface type with methods", t))
	}
	reg := &ifaceReg{key: keyOf(t), typ: t, adapt: func(c CallbackCaller) reflect.Value { return reflect.ValueOf(adapt(c)) }}
	interfaces.Store(reg.key, reg)
	interfaces.Store(t, reg)
}

// interfaces holds the registered interfaces, by key and by type.
var interfaces sync.Map

type ifaceReg struct {
	key   string
	typ   reflect.Type
	adapt func(CallbackCaller) reflect.Value
}

// ifArg is an argument of a registered interface type, in the schema.
type ifArg struct {
	Pos  int    `msgpack:"pos"`
	Type string `msgpack:"type"`
}

// ifaceRef is what travels in place of an interface argument: a callback
// handle for each of the interface's methods.
type ifaceRef struct {
	Methods map[string]uint32 `msgpack:"$callbacks"`
}

// resolveInterfaces finds, once all init functions have run, the
// arguments of c's methods whose type is a registered interface.
func (c *ctor) resolveInterfaces() {
	c.ifOnce.Do(func() {
		for _, m := range c.methods {
			for i, t := range m.in {
				if t.Kind() != reflect.Interface || (m.Variadic && i == len(m.in)-1) {
					continue
				}
				if v, ok := interfaces.Load(t); ok {
					reg := v.(*ifaceReg)
					m.IfArgs = append(m.IfArgs, ifArg{Pos: i, Type: reg.key})
					if m.ifAdapt == nil {
						m.ifAdapt = map[int]*ifaceReg{}
					}
					m.ifAdapt[i] = reg
				}
			}
		}
	})
}

// interfaceArg keeps the methods of v, passed for a registered interface,
// as callbacks and returns what travels instead.
func interfaceArg(ctx context.Context, cbs *callbacks, typ string, v any, handles *[]uint32) (any, error) {
	r, ok := interfaces.Load(typ)
	if !ok {
		return v, nil // not registered here: it travels as a value
	}
	reg := r.(*ifaceReg)
	rv := reflect.ValueOf(v)
	if !rv.Type().Implements(reg.typ) {
		return v, nil // the child says what is wrong with it
	}
	ref := ifaceRef{Methods: make(map[string]uint32, reg.typ.NumMethod())}
	for i := range reg.typ.NumMethod() {
		name := reg.typ.Method(i).Name
		fm, err := funcMethod(rv.MethodByName(name))
		if err != nil {
			return nil, fmt.Errorf("method %s: %w", name, err)
		}
		h := cbs.add(ctx, fm)
		*handles = append(*handles, h)
		ref.Methods[name] = h
	}
	return ref, nil
}

// decodeInterface decodes an argument of a registered interface type into
// f: nil, or the adapter of the parent's value.
func decodeInterface(ctx context.Context, d *codec.ArrayDecoder, f reflect.Value, reg *ifaceReg, where string) error {
	var ref *ifaceRef
	if err := d.Decode(&ref); err != nil {
		return err
	}
	if ref == nil || ref.Methods == nil {
		return nil
	}
	conn := rpc.ConnOf(ctx)
	if conn == nil {
		return errors.New("no connection to call back")
	}
	call := func(ctx context.Context, method string, out any, args ...any) error {
		h, ok := ref.Methods[method]
		if !ok {
			return fmt.Errorf("procxy: callback %s: %v has no method %s", where, reg.typ, method)
		}
		return callParent(ctx, conn, h, args, out, where+"."+method)
	}
	f.Set(reg.adapt(call))
	return nil
}
