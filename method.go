package procxy

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"

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
	Name    string `msgpack:"name"`
	ID      uint16 `msgpack:"id"`
	NumIn   int    `msgpack:"in"`     // arguments the caller passes (no ctx)
	Stream  bool   `msgpack:"stream"` // results arrive as a stream
	Problem string `msgpack:"problem,omitempty"`
	Sig     string `msgpack:"sig,omitempty"` // the signature a caller relies on, e.g. "(int, int) (int, error)"

	fn      reflect.Value // func(recv, args...) from the method expression
	withCtx bool
	in      []reflect.Type // argument types, without ctx
	args    reflect.Type   // a struct of the argument types: one allocation decodes them all
	value   bool           // has a value result (before an optional error)
	withErr bool           // last result is an error
	shape   streamShape
}

// analyze resolves a method's shape; unsupported shapes are kept with a
// Problem so that calling them gives a clear error.
func analyze(rm reflect.Method) *method {
	ft := rm.Type // includes the receiver
	m := &method{Name: rm.Name, fn: rm.Func}
	in := 1
	if ft.NumIn() > 1 && ft.In(1) == ctxType {
		m.withCtx = true
		in = 2
	}
	var fields []reflect.StructField
	for i := in; i < ft.NumIn(); i++ {
		m.in = append(m.in, ft.In(i))
		fields = append(fields, reflect.StructField{Name: fmt.Sprintf("A%d", i-in), Type: ft.In(i)})
	}
	m.NumIn = len(m.in)
	m.args = reflect.StructOf(fields)
	if ft.IsVariadic() {
		m.Problem = "variadic methods are not supported"
	}
	switch ft.NumOut() {
	case 0:
	case 1:
		if ft.Out(0) == errorType {
			m.withErr = true
		} else {
			m.value = true
		}
	case 2:
		if ft.Out(1) != errorType {
			m.Problem = fmt.Sprintf("second result is %v, want error", ft.Out(1))
		}
		m.value, m.withErr = true, true
	default:
		m.Problem = fmt.Sprintf("%d results; want at most a value and an error", ft.NumOut())
	}
	if m.value {
		m.shape = shapeOf(ft.Out(0))
		m.Stream = m.shape != notStream
	}
	m.Sig = signature(ft, in)
	return m
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
			Message: fmt.Sprintf("method %d: cannot decode the request: %v", m.ID, err)}
	}
	if n != len(m.in) {
		return nil, &RemoteError{Code: CodeBadArguments, Name: "ArgumentError",
			Message: fmt.Sprintf("%s takes %d arguments, got %d", m.Name, len(m.in), n)}
	}
	call := callPool.Get().(*[]reflect.Value)
	*call = append((*call)[:0], recv)
	if m.withCtx {
		*call = append(*call, ctxValue(ctx))
	}
	if n > 0 {
		args := reflect.New(m.args).Elem() // one allocation for all arguments
		for i := range n {
			f := args.Field(i)
			if err := d.Decode(f.Addr().Interface()); err != nil {
				putCall(call)
				return nil, &RemoteError{Code: CodeBadArguments, Name: "ArgumentError",
					Message: fmt.Sprintf("%s: argument %d does not decode into %v: %v", m.Name, i+1, m.in[i], err)}
			}
			*call = append(*call, f)
		}
	}
	if err := d.Finish(); err != nil {
		putCall(call)
		return nil, &RemoteError{Name: "DecodeError", Code: "bad_request",
			Message: fmt.Sprintf("method %d: cannot decode the request: %v", m.ID, err)}
	}
	return call, nil
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
	out := m.fn.Call(*call)
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
