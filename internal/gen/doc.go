// Package gen writes typed stubs for a type that procxy runs in a child
// process. It is the engine of `procxy gen`.
//
// Given a package and a type T, [Generate] returns the source of a file for
// the same package that declares
//
//	type TProxy struct{ *procxy.Proxy[T] }
//	func NewTProxy(ctx context.Context, opts ...procxy.Option) (*TProxy, error)
//
// and one method on *TProxy per exported method of *T, which calls
// procxy.Call or procxy.Stream. The shapes follow the runtime's rules (see
// the procxy package documentation):
//
//   - A stub takes a context.Context first and returns an error last. A
//     method's own leading context.Context is not sent: the stub's ctx takes
//     its place and the child sees its cancellation.
//   - Results () and (error) become error; (V) and (V, error) become
//     (V, error).
//   - iter.Seq[V], iter.Seq2[V, error] and <-chan V, optionally followed by
//     an error, are streams and become iter.Seq2[V, error].
//   - A variadic method's stub is variadic too; it passes the elements to
//     the child one by one, as Call does.
//   - Methods with a ...error parameter or three or more results, methods whose
//     second result is not an error or whose result is a func, and methods
//     that take a context.Context after other parameters cannot be called;
//     they are left out with a comment saying why. So are Emit, promoted from
//     an embedded procxy.Emitter, and a method named Proxy, the stubs' field.
//   - A method named like one of procxy.Proxy's (Close, Kill, …) hides it;
//     the proxy's own stays reachable through the embedded field. A stub
//     Close calls the type's Close and then ends the child, so that
//     `defer p.Close(ctx)` never leaves a child running.
//   - Parameter names are kept; unnamed ones, and ones that would clash with
//     the stub's own names, become a0, a1, … by position.
//   - Methods are in name order, so the output is stable.
//
// The package is loaded with go/parser and type-checked with go/types. Its
// imports are read from export data that `go list -export` provides, so the
// go command must be on PATH; without it gen falls back to type-checking the
// imports from source, which is slower.
package gen
