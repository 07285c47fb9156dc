package procxy

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/procxy/procxy/internal/shape"
	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
)

// Wire ids of the object protocol. Methods of a type get ids from
// firstMethodID on, in name order.
const (
	idNew         uint16 = 1 // parent → child: construct the object
	idEvent       uint16 = 1 // child → parent: an Emitter event (the parent's own id space)
	firstMethodID uint16 = 16
)

// streamShape says how a method's results form a stream.
type streamShape uint8

const (
	notStream  streamShape = iota
	streamSeq              // iter.Seq[V]
	streamSeq2             // iter.Seq2[V, error]
	streamChan             // <-chan V
)

// method is one exported method of a registered type, resolved once at
// registration.
type method struct {
	Name    string  `msgpack:"name"`
	ID      uint16  `msgpack:"id"`
	NumIn   int     `msgpack:"in"`     // arguments the caller passes (no ctx)
	Stream  bool    `msgpack:"stream"` // results arrive as a stream
	Problem string  `msgpack:"problem,omitempty"`
	Sig     string  `msgpack:"sig,omitempty"`     // the signature a caller relies on, e.g. "(int, int) (int, error)"
	ErrArgs []int   `msgpack:"errargs,omitempty"` // positions (from 0) of arguments of type error: they travel as error payloads
	CbArgs  []int   `msgpack:"cbargs,omitempty"`  // positions (from 0) of func arguments: they travel as callbacks (callback.go)
	IfArgs  []ifArg `msgpack:"ifargs,omitempty"`  // arguments of registered interface types: their methods travel as callbacks
	// Variadic: the last parameter is ...E. The caller passes its
	// elements one by one after the NumIn-1 others, as in Go.
	Variadic bool `msgpack:"variadic,omitempty"`

	pc uintptr // the method's code, to say where its errors came from

	fn      reflect.Value // func(recv, args...) from the method expression
	withCtx bool
	in      []reflect.Type // argument types, without ctx
	args    reflect.Type   // a struct of the argument types: one allocation decodes them all
	value   bool           // has a value result (before an optional error)
	withErr bool           // last result is an error
	shape   streamShape
	ifAdapt map[int]*ifaceReg // IfArgs' adapters, by position
}

// analyze resolves a method's shape with the rules of internal/shape,
// which procxy gen shares; unsupported shapes are kept with a Problem so
// that calling them gives a clear error.
func analyze(rm reflect.Method) *method {
	ft := rm.Type // includes the receiver
	m := &method{Name: rm.Name, fn: rm.Func, pc: rm.Func.Pointer()}
	var sig shape.Sig
	for i := 1; i < ft.NumIn(); i++ {
		t := ft.In(i)
		if ft.IsVariadic() && i == ft.NumIn()-1 {
			t = t.Elem()
		}
		sig.Params = append(sig.Params, paramKind(t))
	}
	sig.Variadic = ft.IsVariadic()
	for i := range ft.NumOut() {
		sig.Results = append(sig.Results, resultKind(ft.Out(i)))
		sig.ResultTypes = append(sig.ResultTypes, ft.Out(i).String())
	}
	sh := shape.Check(sig)
	m.Problem, m.withCtx, m.value, m.withErr, m.Variadic = sh.Problem, sh.WithCtx, sh.Value, sh.WithErr, sig.Variadic
	in := 1
	if m.withCtx {
		in = 2
	}
	var fields []reflect.StructField
	for i := in; i < ft.NumIn(); i++ {
		if ft.In(i) == errorType {
			m.ErrArgs = append(m.ErrArgs, i-in)
		}
		if ft.In(i).Kind() == reflect.Func && !(ft.IsVariadic() && i == ft.NumIn()-1) {
			m.CbArgs = append(m.CbArgs, i-in)
		}
		m.in = append(m.in, ft.In(i))
		fields = append(fields, reflect.StructField{Name: fmt.Sprintf("A%d", i-in), Type: ft.In(i)})
	}
	m.NumIn = len(m.in)
	m.args = reflect.StructOf(fields)
	if m.value {
		m.shape = shapeOf(ft.Out(0))
		m.Stream = sh.Stream
	}
	m.Sig = signature(ft, in)
	return m
}

// paramKind and resultKind describe a parameter and a result to the rules.
func paramKind(t reflect.Type) shape.Kind {
	switch {
	case t == ctxType:
		return shape.Context
	case t == errorType:
		return shape.Error
	case t.Kind() == reflect.Func:
		return shape.Func
	}
	return shape.Value
}

func resultKind(t reflect.Type) shape.Kind {
	switch {
	case t == errorType:
		return shape.Error
	case shapeOf(t) != notStream:
		return shape.Stream
	case t.Kind() == reflect.Func, t.Kind() == reflect.Chan && t.ChanDir() == reflect.SendDir:
		return shape.Unsendable
	}
	return shape.Value
}

// signature is a method's parameters (from the first one after the
// receiver and context) and results, as Go writes them.
func signature(ft reflect.Type, from int) string {
	var b strings.Builder
	b.WriteByte('(')
	for i := from; i < ft.NumIn(); i++ {
		if i > from {
			b.WriteString(", ")
		}
		if ft.IsVariadic() && i == ft.NumIn()-1 {
			b.WriteString("..." + ft.In(i).Elem().String())
			continue
		}
		b.WriteString(ft.In(i).String())
	}
	b.WriteByte(')')
	switch ft.NumOut() {
	case 0:
	case 1:
		b.WriteString(" " + ft.Out(0).String())
	default:
		b.WriteString(" (")
		for i := range ft.NumOut() {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(ft.Out(i).String())
		}
		b.WriteByte(')')
	}
	return b.String()
}

// shapeOf recognises iter.Seq[V], iter.Seq2[V, error] and <-chan V.
func shapeOf(t reflect.Type) streamShape {
	switch t.Kind() {
	case reflect.Chan:
		if t.ChanDir()&reflect.RecvDir != 0 {
			return streamChan
		}
	case reflect.Func:
		if t.NumIn() != 1 || t.NumOut() != 0 {
			return notStream
		}
		y := t.In(0)
		if y.Kind() != reflect.Func || y.NumOut() != 1 || y.Out(0).Kind() != reflect.Bool {
			return notStream
		}
		switch {
		case y.NumIn() == 1:
			return streamSeq
		case y.NumIn() == 2 && y.In(1) == errorType:
			return streamSeq2
		}
	}
	return notStream
}

// decodeCall decodes the caller's argument array straight into the
// parameter types, in one pass over the payload, and returns the arguments
// of the method expression — receiver, context if the method takes one,
// then the decoded arguments — in a pooled slice for invoke. A []byte
// argument of a large payload (read into a slice of its own) aliases it:
// no copy.
func (m *method) decodeCall(ctx context.Context, recv reflect.Value, p rpc.Payload) (*[]reflect.Value, error) {
	var d codec.ArrayDecoder
	n, err := d.Reset(p.Bytes, p.Owned)
	if err != nil {
		return nil, &RemoteError{Name: "DecodeError", Code: "bad_request",
			Message: fmt.Sprintf("the request is not an argument list: %v", err)}
	}
	fixed := len(m.in)
	if m.Variadic {
		fixed--
		if n < fixed {
			return nil, argCountAtLeast(fixed, n)
		}
	} else if n != fixed {
		return nil, argCount(fixed, n)
	}
	call := callPool.Get().(*[]reflect.Value)
	*call = append((*call)[:0], recv)
	if m.withCtx {
		*call = append(*call, ctxValue(ctx))
	}
	if len(m.in) > 0 {
		args := reflect.New(m.args).Elem() // one allocation for all arguments
		for i := range fixed {
			f := args.Field(i)
			var err error
			switch {
			case m.in[i] == errorType:
				err = decodeErrorArg(&d, f)
			case m.ifAdapt[i] != nil:
				err = decodeInterface(ctx, &d, f, m.ifAdapt[i], fmt.Sprintf("argument %d of %s", i+1, m.Name))
			case m.in[i].Kind() == reflect.Func:
				err = decodeCallback(ctx, &d, f, fmt.Sprintf("argument %d of %s", i+1, m.Name))
			default:
				err = d.Decode(f.Addr().Interface())
			}
			if err != nil {
				putCall(call)
				return nil, argError("%s", argProblem(i+1, m.in[i], err))
			}
			*call = append(*call, f)
		}
		if m.Variadic {
			if err := m.decodeVariadic(&d, args.Field(fixed), fixed, n-fixed); err != nil {
				putCall(call)
				return nil, err
			}
			*call = append(*call, args.Field(fixed))
		}
	}
	if err := d.Finish(); err != nil {
		putCall(call)
		return nil, &RemoteError{Name: "DecodeError", Code: "bad_request",
			Message: fmt.Sprintf("the request is not an argument list: %v", err)}
	}
	return call, nil
}

// decodeVariadic decodes the last k arguments, which follow the fixed
// ones, into a new slice for the variadic parameter f.
func (m *method) decodeVariadic(d *codec.ArrayDecoder, f reflect.Value, fixed, k int) *RemoteError {
	if k == 0 {
		return nil // nil, as a local call with no variadic arguments gives
	}
	sl := reflect.MakeSlice(f.Type(), k, k)
	for j := range k {
		if err := d.Decode(sl.Index(j).Addr().Interface()); err != nil {
			return argError("%s", argProblem(fixed+j+1, f.Type().Elem(), err))
		}
	}
	f.Set(sl)
	return nil
}

// argCountAtLeast is the error for a call with n arguments to a variadic
// method that takes at least want.
func argCountAtLeast(want, n int) *RemoteError {
	return argError("takes at least %d argument%s, got %d", want, plural(want), n)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// argCount is the error for a call with n arguments to a method that
// takes want.
func argCount(want, n int) *RemoteError {
	s := "s"
	if want == 1 {
		s = ""
	}
	return argError("takes %d argument%s, got %d", want, s, n)
}

// argProblem says why argument i (from 1) does not decode into want, in
// Go terms.
func argProblem(i int, want reflect.Type, err error) string {
	var ve *codec.ValueError
	switch {
	case !errors.As(err, &ve):
		return fmt.Sprintf("argument %d does not decode into %v", i, want)
	case ve.Value != "" && ve.Path != "":
		return fmt.Sprintf("argument %d (%s): %s does not fit in %v", i, ve.Path, ve.Value, ve.Want)
	case ve.Value != "":
		return fmt.Sprintf("argument %d: %s does not fit in %v", i, ve.Value, want)
	case ve.Nested:
		return fmt.Sprintf("argument %d (%s) does not decode into %v", i, ve.Got, want)
	}
	return fmt.Sprintf("argument %d is %s, want %v", i, ve.Got, want)
}

// decodeErrorArg decodes an argument of type error, which travels as an
// error payload (rpc.AppendError), into f: nil, or a *RemoteError whose
// identity is the error's (RegisterError).
func decodeErrorArg(d *codec.ArrayDecoder, f reflect.Value) error {
	var raw msgpack.RawMessage
	if err := d.Decode(&raw); err != nil {
		return err
	}
	if len(raw) == 0 || raw[0] == 0xc0 {
		return nil
	}
	err := rpc.DecodeError(raw)
	var re *RemoteError
	if !errors.As(err, &re) {
		return err
	}
	f.Set(reflect.ValueOf(error(passedError{re})))
	return nil
}

// passedError is an error passed as an argument, as the method sees it:
// the message as the caller's error had it, and the *RemoteError (and
// through it the error's identity) for errors.Is and errors.As.
type passedError struct{ re *RemoteError }

func (e passedError) Error() string { return e.re.Message }
func (e passedError) Unwrap() error { return e.re }

// errorArgs returns args with the error arguments of m encoded as error
// payloads, as decodeErrorArg reads them.
func (m *method) errorArgs(args []any) []any {
	if len(m.ErrArgs) == 0 {
		return args
	}
	out := slices.Clone(args)
	for _, i := range m.ErrArgs {
		if i >= len(out) {
			continue
		}
		if err, ok := out[i].(error); ok && err != nil {
			out[i] = msgpack.RawMessage(rpc.AppendError(nil, err))
		}
	}
	return out
}

// ctxValue is ctx as a reflect.Value of type context.Context. It is a
// function of its own so that ctx moves to the heap only for methods that
// take a context.
func ctxValue(ctx context.Context) reflect.Value { return reflect.ValueOf(&ctx).Elem() }

// callPool holds the argument slices of method calls.
var callPool = sync.Pool{New: func() any { s := make([]reflect.Value, 0, 8); return &s }}

func putCall(call *[]reflect.Value) {
	clear(*call)
	if cap(*call) <= 64 {
		callPool.Put(call)
	}
}

// invoke calls the method with the arguments decodeCall returned (and
// releases them) and splits its results.
func (m *method) invoke(call *[]reflect.Value) (reflect.Value, error) {
	var out []reflect.Value
	if m.Variadic {
		out = m.fn.CallSlice(*call) // the last argument is the decoded slice
	} else {
		out = m.fn.Call(*call)
	}
	putCall(call)
	var v reflect.Value
	if m.value {
		v = out[0]
	}
	if m.withErr {
		if e := out[len(out)-1]; !e.IsNil() {
			return v, e.Interface().(error)
		}
	}
	return v, nil
}

// each feeds the items of a stream result to send until it is exhausted,
// send fails or ctx ends.
func (m *method) each(ctx context.Context, v reflect.Value, send func(any) error) error {
	switch m.shape {
	case streamChan:
		if v.IsNil() {
			return nil
		}
		done := reflect.ValueOf(ctx.Done())
		for {
			chosen, x, ok := reflect.Select([]reflect.SelectCase{
				{Dir: reflect.SelectRecv, Chan: v},
				{Dir: reflect.SelectRecv, Chan: done},
			})
			if chosen == 1 {
				return ctx.Err()
			}
			if !ok {
				return nil
			}
			if err := send(x.Interface()); err != nil {
				return err
			}
		}
	case streamSeq, streamSeq2:
		if v.IsNil() {
			return nil
		}
		var failed error
		yt := v.Type().In(0)
		yield := reflect.MakeFunc(yt, func(args []reflect.Value) []reflect.Value {
			if m.shape == streamSeq2 && !args[1].IsNil() {
				failed = args[1].Interface().(error)
				return []reflect.Value{reflect.ValueOf(false)}
			}
			if err := send(args[0].Interface()); err != nil {
				failed = err
				return []reflect.Value{reflect.ValueOf(false)}
			}
			return []reflect.Value{reflect.ValueOf(true)}
		})
		v.Call([]reflect.Value{yield})
		return failed
	}
	return nil
}
