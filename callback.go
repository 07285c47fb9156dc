package procxy

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
)

// Callbacks. A func argument does not travel: the parent keeps the func
// for the duration of the call under a handle, sends the handle in its
// place ({"$callback": handle}), and the child's method receives a func of
// the parameter's type that calls the parent back over the same
// connection (request idCallback, payload [handle, [args…]]). The call
// runs in the parent with the arguments and results decoded as for a
// method, so errors keep their identity both ways, and contexts cross: a
// context the child passes to the callback ends the parent's run of it
// when it ends, and the parent's run ends when the parent's call returns.
// After the call has returned, the handle is gone and the child's func
// fails with ErrCallbackExpired.

// idCallback is the child → parent request that runs a callback (the
// parent's own id space, like idEvent).
const idCallback uint16 = 2

// ErrCallbackExpired is the error of a callback (a func passed as an
// argument) called in the child after the call that passed it returned.
var ErrCallbackExpired = errors.New("procxy: callback called after its call returned")

func init() { RegisterError(ErrCallbackExpired) }

// callbackRef is what travels in place of a func argument.
type callbackRef struct {
	Handle uint32 `msgpack:"$callback"`
}

// callbackRequest is the payload of idCallback.
type callbackRequest struct {
	_msgpack struct{} `msgpack:",as_array"`
	Handle   uint32
	Args     msgpack.RawMessage // the argument array
}

// callbacks are the funcs a parent passed to calls in progress on one
// session, by handle.
type callbacks struct {
	mu   sync.Mutex
	next uint32               // the last handle given
	live map[uint32]*callback // guarded by mu
}

type callback struct {
	m      *method
	ctx    context.Context // ends when the call that passed it returns
	cancel context.CancelFunc
}

// wireArgs returns args as they travel for m: error arguments as error
// payloads, and func arguments as handles kept in cbs until release is
// called, when the call has returned.
func (m *method) wireArgs(ctx context.Context, cbs *callbacks, args []any) (_ []any, release func(), err error) {
	args = m.errorArgs(args)
	if len(m.CbArgs) == 0 && len(m.IfArgs) == 0 {
		return args, noRelease, nil
	}
	if len(m.ErrArgs) == 0 {
		args = append([]any(nil), args...)
	}
	var handles []uint32
	release = func() { cbs.remove(handles) }
	for _, i := range m.CbArgs {
		if i >= len(args) || args[i] == nil {
			continue
		}
		fv := reflect.ValueOf(args[i])
		if fv.Kind() != reflect.Func {
			continue // the child says what is wrong with it
		}
		if fv.IsNil() {
			args[i] = nil
			continue
		}
		fm, err := funcMethod(fv)
		if err != nil {
			release()
			return nil, nil, argError("argument %d (%v) cannot be called back: %v", i+1, fv.Type(), err)
		}
		h := cbs.add(ctx, fm)
		handles = append(handles, h)
		args[i] = callbackRef{Handle: h}
	}
	for _, ia := range m.IfArgs {
		if ia.Pos >= len(args) || args[ia.Pos] == nil {
			continue
		}
		v, err := interfaceArg(ctx, cbs, ia.Type, args[ia.Pos], &handles)
		if err != nil {
			release()
			return nil, nil, argError("argument %d (%T) cannot be called back: %v", ia.Pos+1, args[ia.Pos], err)
		}
		args[ia.Pos] = v
	}
	return args, release, nil
}

// funcMethod describes a func as a method of an empty receiver, so that
// a callback's arguments and results go through the same decoding (and
// checks) as a method's.
func funcMethod(fv reflect.Value) (*method, error) {
	ft := fv.Type()
	in := []reflect.Type{reflect.TypeFor[struct{}]()}
	for i := range ft.NumIn() {
		in = append(in, ft.In(i))
	}
	out := make([]reflect.Type, ft.NumOut())
	for i := range out {
		out[i] = ft.Out(i)
	}
	wt := reflect.FuncOf(in, out, ft.IsVariadic())
	wrapper := reflect.MakeFunc(wt, func(args []reflect.Value) []reflect.Value {
		if ft.IsVariadic() {
			return fv.CallSlice(args[1:])
		}
		return fv.Call(args[1:])
	})
	m := analyze(reflect.Method{Name: "callback", Type: wt, Func: wrapper})
	m.pc = fv.Pointer() // errors say they came from the func, not the wrapper
	switch {
	case m.Problem != "":
		return nil, errors.New(m.Problem)
	case m.Stream:
		return nil, errors.New("a callback cannot return a stream")
	case len(m.CbArgs) > 0:
		return nil, errors.New("a callback cannot take a func")
	}
	return m, nil
}

func (t *callbacks) add(ctx context.Context, m *method) uint32 {
	cb := &callback{m: m}
	cb.ctx, cb.cancel = context.WithCancel(ctx)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.live == nil {
		t.live = make(map[uint32]*callback)
	}
	for {
		t.next++
		if _, busy := t.live[t.next]; !busy && t.next != 0 {
			break
		}
	}
	t.live[t.next] = cb
	return t.next
}

// remove expires the callbacks of a call that returned: their runs in
// progress see their context cancelled.
func (t *callbacks) remove(handles []uint32) {
	t.mu.Lock()
	var gone []*callback
	for _, h := range handles {
		if cb := t.live[h]; cb != nil {
			gone = append(gone, cb)
			delete(t.live, h)
		}
	}
	t.mu.Unlock()
	for _, cb := range gone {
		cb.cancel()
	}
}

// serve runs a callback for the child (request idCallback). ctx ends when
// the child gives up on the callback.
func (t *callbacks) serve(ctx context.Context, p rpc.Payload) (any, error) {
	var req callbackRequest
	if err := msgpackCodec.Unmarshal(p.Bytes, &req); err != nil {
		return nil, &RemoteError{Name: "DecodeError", Code: "bad_request", Message: fmt.Sprintf("a callback request does not decode: %v", err)}
	}
	t.mu.Lock()
	cb := t.live[req.Handle]
	t.mu.Unlock()
	if cb == nil {
		return nil, &RemoteError{Name: "*errors.errorString", Message: ErrCallbackExpired.Error(), Err: ErrCallbackExpired}
	}
	run, cancel := context.WithCancel(cb.ctx)
	defer cancel()
	defer context.AfterFunc(ctx, cancel)()
	return cb.m.serve(run, reflect.ValueOf(struct{}{}), nil, rpc.Payload{Bytes: req.Args})
}

// callable returns the func of type ft that a method in the child receives
// for a callback: calling it runs the parent's func over conn. where names
// it in errors ("argument 2 of Job.Run").
func callable(conn *rpc.Conn, ft reflect.Type, handle uint32, where string) reflect.Value {
	withCtx := ft.NumIn() > 0 && ft.In(0) == ctxType
	nout := ft.NumOut()
	withErr := nout > 0 && ft.Out(nout-1) == errorType
	value := nout > 0 && !withErr || nout == 2
	return reflect.MakeFunc(ft, func(in []reflect.Value) []reflect.Value {
		ctx := context.Background()
		if withCtx {
			if c, ok := in[0].Interface().(context.Context); ok && c != nil {
				ctx = c
			}
			in = in[1:]
		}
		args := make([]any, 0, len(in))
		for i, a := range in {
			switch {
			case ft.IsVariadic() && i == len(in)-1:
				for j := range a.Len() {
					args = append(args, a.Index(j).Interface())
				}
			case a.Type() == errorType:
				e, _ := a.Interface().(error)
				args = append(args, errArg{e})
			default:
				args = append(args, a.Interface())
			}
		}
		outs := make([]reflect.Value, nout)
		for i := range outs {
			outs[i] = reflect.Zero(ft.Out(i))
		}
		var out any
		var ptr reflect.Value
		if value {
			ptr = reflect.New(ft.Out(0))
			out = ptr.Interface()
		}
		err := callParent(ctx, conn, handle, args, out, where)
		if err == nil && value {
			outs[0] = ptr.Elem()
		}
		if err != nil {
			if !withErr {
				panic(err) // the func has no error result to report it with
			}
			outs[nout-1] = reflect.ValueOf(&err).Elem()
		}
		return outs
	})
}

// decodeCallback decodes a func argument, which travels as a callback
// handle, into f: nil, or a func that calls the parent back.
func decodeCallback(ctx context.Context, d *codec.ArrayDecoder, f reflect.Value, where string) error {
	var ref *callbackRef
	if err := d.Decode(&ref); err != nil {
		return err
	}
	if ref == nil {
		return nil
	}
	conn := rpc.ConnOf(ctx)
	if conn == nil {
		return errors.New("no connection to call back")
	}
	f.Set(callable(conn, f.Type(), ref.Handle, where))
	return nil
}

// errArg is an argument of type error, which travels as an error payload.
type errArg struct{ err error }

// callParent runs the parent's callback handle with args, decoding its
// value into out (or nil); where names it in errors.
func callParent(ctx context.Context, conn *rpc.Conn, handle uint32, args []any, out any, where string) error {
	args = append(make([]any, 0, len(args)), args...) // not the caller's; never nil (an empty list, not nil)
	for i, a := range args {
		switch a := a.(type) {
		case errArg:
			if a.err == nil {
				args[i] = nil
			} else {
				args[i] = msgpack.RawMessage(rpc.AppendError(nil, a.err))
			}
		case error:
			args[i] = msgpack.RawMessage(rpc.AppendError(nil, a))
		}
	}
	raw, err := msgpackCodec.Append(nil, args)
	if err == nil {
		err = conn.Call(ctx, rpc.Method{ID: idCallback, Name: "$callback"}, callbackRequest{Handle: handle, Args: raw}, out)
	}
	if err == nil {
		return nil
	}
	if re, ok := err.(*RemoteError); ok {
		return &methodError{where: "callback " + where, re: re}
	}
	return fmt.Errorf("procxy: callback %s: %w", where, err)
}
