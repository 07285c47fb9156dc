package observe

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Observer receives calls and child-process events as they happen. Its
// methods are called on the goroutine doing the work, so they must be
// quick and safe for concurrent use, and must not call back into the
// object they observe (a Proxy reports a restart while it holds its own
// lock). An Observer must not keep the *Call after CallEnd returns.
type Observer interface {
	// CallStart is called when a call starts: before the request is sent
	// (Side Client) or before the handler runs (Side Server). The context
	// it returns is the one CallEnd gets and, on the server side, the
	// handler's; it must be derived from ctx. A client may set values in
	// c.Carrier when it is not nil.
	CallStart(ctx context.Context, c *Call) context.Context
	// CallEnd is called once when the call has ended, with c's outcome
	// (Duration, BytesOut, BytesIn, Err) filled in.
	CallEnd(ctx context.Context, c *Call)
	// Child is called when a child process starts, exits or is restarted.
	Child(e ChildEvent)
}

// Side says which end of a call an observation is from.
type Side uint8

const (
	Client Side = iota // the side that makes the call
	Server             // the side that serves it
)

func (s Side) String() string {
	if s == Server {
		return "server"
	}
	return "client"
}

// Kind is the shape of a call.
type Kind uint8

const (
	Unary  Kind = iota // one request, one answer (a result or an ack)
	Stream             // one request, a stream of answers
	OneWay             // a request with no answer: fire-and-forget, an event, a published message
)

func (k Kind) String() string {
	switch k {
	case Unary:
		return "unary"
	case Stream:
		return "stream"
	case OneWay:
		return "oneway"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Call describes one call. The library fills in the fields above the
// outcome before CallStart and the outcome before CallEnd.
type Call struct {
	Side Side
	Kind Kind
	// Service is what the call goes to: the object's type key for the
	// object proxy (main.Counter), the module's name for host and worker,
	// "ipc" for ipc. Empty when the connection was not given one.
	Service string
	// Method is the method's name, or "#<id>" where only its id is known;
	// the subject for ipc.
	Method string
	// MethodID is the method's id on the wire (0 for ipc).
	MethodID uint16
	// Carrier carries trace context across the process boundary; nil when
	// the connection has no place for it.
	Carrier Carrier
	// Start is when the call started.
	Start time.Time

	// The outcome.
	Duration time.Duration // from Start to the end
	BytesOut int64         // payload bytes sent: the request, or a server's answer (all chunks of a stream)
	BytesIn  int64         // payload bytes received
	Err      error         // nil on success
}

// Carrier holds trace context as string pairs. Its methods are those of
// OpenTelemetry's propagation.TextMapCarrier, so a Carrier can be passed
// to a propagator as it is.
type Carrier interface {
	Get(key string) string
	Set(key, value string)
	Keys() []string
}

// Header is a Carrier in a map, the one the rpc engine sends with a
// request.
type Header map[string]string

func (h Header) Get(key string) string { return h[key] }
func (h Header) Set(key, value string) { h[key] = value }

// Keys returns the keys in sorted order.
func (h Header) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// ChildKind is what happened to a child process.
type ChildKind uint8

const (
	ChildSpawn   ChildKind = iota // a child process was started (or attached to)
	ChildExit                     // a child process exited or was lost
	ChildRestart                  // a child that died is being replaced
)

func (k ChildKind) String() string {
	switch k {
	case ChildSpawn:
		return "spawn"
	case ChildExit:
		return "exit"
	case ChildRestart:
		return "restart"
	}
	return fmt.Sprintf("ChildKind(%d)", uint8(k))
}

// ChildEvent is a child process starting, exiting or being restarted.
type ChildEvent struct {
	Kind    ChildKind
	Service string // the object's type key or the module's name
	PID     int    // the child's process id (0 when unknown)
	// Err is why a child exited (its exit error; nil for an exit the
	// parent asked for) or why it is restarted.
	Err  error
	Time time.Time
}
