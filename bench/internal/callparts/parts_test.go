package callparts

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/procxy/procxy/rpc/codec"
	"github.com/vmihailenco/msgpack/v5"
)

type calculator struct{}

func (*calculator) Add(a, b int) int { return a + b }

// sink keeps results alive.
var sink any

// BenchmarkParentArgs: what the parent encodes. procxy.Call sends its
// variadic args as a []any (each int boxed, the slice escaping to the heap
// through rpc.Conn.Call's `in any`); the rpc-level add sends a [2]int.
func BenchmarkParentArgs(b *testing.B) {
	buf := make([]byte, 0, 512)
	b.Run("rpc/[2]int", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			var err error
			if buf, err = codec.Msgpack.Append(buf[:0], [2]int{1000 + i&1023, 3}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proxy/[]any", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			var err error
			if buf, err = appendArgs(buf[:0], 1000+i&1023, 3); err != nil {
				b.Fatal(err)
			}
		}
	})
}

//go:noinline
func appendArgs(buf []byte, args ...any) ([]byte, error) {
	sink = args // as in procxy.Call: args reach rpc.Conn.Call as `in any`
	return codec.Msgpack.Append(buf, args)
}

// BenchmarkParentOut: procxy.Call[int] decodes the result into &out, an
// `any` holding a *int that escapes (one allocation); the rpc-level add does
// the same with &sum, so this part is equal on both sides.
func BenchmarkParentOut(b *testing.B) {
	payload, _ := codec.Msgpack.Append(nil, 1003)
	b.ReportAllocs()
	for b.Loop() {
		var out int
		if err := codec.Msgpack.Unmarshal(payload, &out); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParentTimeout: with the default Timeout (30 s) callOnce wraps
// every call's ctx in context.WithTimeout and cancels it after. The parent
// here is a cancellable context, as a caller's usually is (rpcbench's is
// signal.NotifyContext's, a test's is b.Context()); rpc.Conn.Call then
// selects on ctx.Done(), which a timerCtx makes lazily.
func BenchmarkParentTimeout(b *testing.B) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	b.Run("none", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = parent.Done()
		}
	})
	b.Run("WithTimeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(parent, 30*time.Second)
			sink = ctx.Done()
			cancel()
		}
	})
	b.Run("WithTimeout/Background", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			sink = ctx.Done()
			cancel()
		}
	})
}

// BenchmarkChildDecode: what the child decodes. The rpc-level handler is a
// ResultFunc taking [2]int. The proxy's handler is a ResultFunc taking
// []msgpack.RawMessage, then decodeArgs decodes each element into
// reflect.New(paramType) with a second codec.Msgpack.Unmarshal.
func BenchmarkChildDecode(b *testing.B) {
	payload, _ := codec.Msgpack.Append(nil, []any{1003, 3})
	in := []reflect.Type{reflect.TypeFor[int](), reflect.TypeFor[int]()}
	b.Run("rpc/[2]int", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v [2]int
			if err := codec.Msgpack.Unmarshal(payload, &v); err != nil {
				b.Fatal(err)
			}
			sink = v[0] + v[1]
		}
	})
	b.Run("proxy/RawMessage+each", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var raw []msgpack.RawMessage
			if err := codec.Msgpack.Unmarshal(payload, &raw); err != nil {
				b.Fatal(err)
			}
			args := make([]reflect.Value, len(raw))
			for i, r := range raw {
				p := reflect.New(in[i])
				if err := codec.Msgpack.Unmarshal(r, p.Interface()); err != nil {
					b.Fatal(err)
				}
				args[i] = p.Elem()
			}
			sink = args
		}
	})
	b.Run("proxy/RawMessage-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var raw []msgpack.RawMessage
			if err := codec.Msgpack.Unmarshal(payload, &raw); err != nil {
				b.Fatal(err)
			}
			sink = raw
		}
	})
}

// BenchmarkChildInvoke: calling the method. The rpc-level handler is a
// direct call; the proxy's invoke builds []reflect.Value{recv, args...},
// calls the method expression with reflect.Value.Call and boxes the result
// with Interface() for the reply.
func BenchmarkChildInvoke(b *testing.B) {
	c := &calculator{}
	m, _ := reflect.TypeFor[*calculator]().MethodByName("Add")
	recv := reflect.ValueOf(c)
	args := []reflect.Value{reflect.ValueOf(1003), reflect.ValueOf(3)}
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			sink = c.Add(1003, 3)
		}
	})
	b.Run("reflect", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			call := make([]reflect.Value, 0, len(args)+2)
			call = append(call, recv)
			out := m.Func.Call(append(call, args...))
			sink = out[0].Interface()
		}
	})
}

// BenchmarkChildReply: both handlers return the sum as an `any` that the
// connection encodes; equal on both sides, shown for scale.
func BenchmarkChildReply(b *testing.B) {
	buf := make([]byte, 0, 512)
	var v any = 1006
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = codec.Msgpack.Append(buf[:0], v); err != nil {
			b.Fatal(err)
		}
	}
}
