// Package procxy runs Go values in child processes and lets the parent use
// them as if they were local: typed calls with context cancellation and
// timeouts, streams, events, and errors that keep their identity across
// the process boundary (RegisterError, RegisterErrorType).
//
// A child is the same executable re-run, so every type the parent knows is
// compiled into it. Register a constructor, call Main first thing in main,
// and construct the value in a child with New:
//
//	type Calculator struct{}
//
//	func (*Calculator) Add(a, b int) int { return a + b }
//
//	func init() { procxy.Register[Calculator](nil) }
//
//	func main() {
//		procxy.Main() // in a child, serves and never returns
//		calc, err := procxy.New[Calculator](ctx)
//		…
//		sum, err := procxy.Call[int](ctx, calc, "Add", 2, 3) // 5
//	}
//
// `procxy gen` writes typed stubs, so that calc.Add(ctx, 2, 3) returns
// (int, error) and is checked by the compiler.
//
// # Methods
//
// Every exported method of *T can be called. It may take a context.Context
// first (cancelling the caller's context cancels it in the child), and
// return nothing, a value, an error, or a value and an error. A method that
// returns iter.Seq[V], iter.Seq2[V, error] or <-chan V (optionally with an
// error) is a stream: call it with Stream. A variadic method takes its
// variadic arguments one by one, as in Go. Arguments and results travel as
// msgpack (package rpc/codec), so they must be serializable; time.Time
// values keep millisecond precision, as in Procwire.
//
// Methods promoted from an embedded Emitter are not callable remotely. A
// type's own Close, Kill, Done, Err, Process or Methods can be called with
// Call; on stubs from `procxy gen` they hide the Proxy's methods of the same
// name, which stay reachable as stub.Proxy.Close and so on.
//
// Calls run concurrently in the child, each in its own goroutine; the type
// must be safe for concurrent use unless the proxy is made with Serialized.
//
// # Large values
//
// A []byte argument or result goes from the caller's memory to the socket
// and from the socket into the parameter without intermediate copies;
// CallInto reads a []byte result into a buffer the caller reuses. On Linux
// values of 256 KiB or more travel through memory the parent and the child
// share (see SharedMemory), at the cost of one copy on each side.
//
// # Lifecycle
//
// The child talks to the parent over an inherited socketpair. Its stdout and
// stderr are forwarded line by line to a *slog.Logger. It never outlives the
// parent: on Linux it gets SIGKILL when the parent dies, and everywhere it
// exits when its end of the socket reaches EOF, which happens however the
// parent ends. If the child dies, pending calls fail at once with an
// *ExitError carrying the exit status or signal, the child's panic report
// and its last stderr lines, and the resource limit or OOM kill that ended
// it where that can be told. Close asks the child to exit and kills it
// after StopGrace.
//
// A Recycle policy (Recycling) replaces children that have served a number
// of calls, reached an age, grown past a resident-memory limit, or had a
// call time out (kill on timeout, for methods that ignore their context).
//
// # Workers on a bus
//
// The same calls can go to worker processes on other machines, reached
// through a message bus: an ipc server, or NATS through package
// ipc/natsipc. A worker calls Serve on its connection and serves every type
// it registers and every Func, each method a queue group; a caller makes a
// Remote with NewRemote (or a Func's Via) and uses Call, Stream and OnEvent as
// with a Proxy. A worker that dies mid-call fails it with ErrWorkerGone
// (retried for Idempotent methods), a worker of another version is
// reported by ErrNoWorker with what it serves, and Workers and WaitWorkers
// list the workers.
//
// # Many calls
//
// Map calls a method of a Pool once per input, and Function.Map and
// Function.MapUnordered run a Func over many inputs, each with a bounded
// number of calls in flight, as Python's Pool.map and imap_unordered do.
package procxy
