package procxy

import (
	"context"
	"fmt"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"
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

	fn      reflect.Value // func(recv, args...) from the method expression
	withCtx bool
	in      []reflect.Type // argument types, without ctx
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
	for i := in; i < ft.NumIn(); i++ {
		m.in = append(m.in, ft.In(i))
	}
	m.NumIn = len(m.in)
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
	return m
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

// decodeArgs decodes the caller's argument array into the parameter types.
func (m *method) decodeArgs(raw []msgpack.RawMessage) ([]reflect.Value, error) {
	if len(raw) != len(m.in) {
		return nil, &RemoteError{Code: CodeBadArguments, Name: "ArgumentError",
			Message: fmt.Sprintf("%s takes %d arguments, got %d", m.Name, len(m.in), len(raw))}
	}
	args := make([]reflect.Value, len(raw))
	for i, r := range raw {
		p := reflect.New(m.in[i])
		if err := msgpackCodec.Unmarshal(r, p.Interface()); err != nil {
			return nil, &RemoteError{Code: CodeBadArguments, Name: "ArgumentError",
				Message: fmt.Sprintf("%s: argument %d does not decode into %v: %v", m.Name, i+1, m.in[i], err)}
		}
		args[i] = p.Elem()
	}
	return args, nil
}

// invoke calls the method on recv and splits its results.
func (m *method) invoke(ctx context.Context, recv reflect.Value, args []reflect.Value) (reflect.Value, error) {
	call := make([]reflect.Value, 0, len(args)+2)
	call = append(call, recv)
	if m.withCtx {
		call = append(call, reflect.ValueOf(&ctx).Elem())
	}
	out := m.fn.Call(append(call, args...))
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
