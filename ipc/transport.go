package ipc

import (
	"context"
	"fmt"
)

// Transport moves messages between a [Conn] and a message bus: the ipc
// server over a socket ([Dial]), the server's own in-process endpoint
// ([Server.Conn]), or NATS (package natsipc). It provides NATS's core
// operations; [Conn] builds everything else — requests with cancellation,
// streams, channels, typed helpers — on top, so every backend behaves the
// same. Applications do not use a Transport directly.
//
// A Transport must keep NATS's guarantees: messages from one publisher
// reach each subscriber in the order they were published, at most once; a
// queue subscription shares the messages of its subject with the other
// members of its queue group, one member each.
type Transport interface {
	// Open connects and starts delivering events to s. It is called once,
	// by NewConn, and returns when the transport is ready for Publish.
	Open(ctx context.Context, s Sink) error
	// Publish sends m (Subject, Reply, headers, Data). It may buffer; it
	// must not keep m after it returns. f says what the message is.
	Publish(m *Msg, f Flags) error
	// PublishSync sends m and waits until the bus has routed it: it
	// returns ErrNoSubscribers, ErrPermission or ErrRateLimited when the
	// bus says so. A bus that cannot tell returns after a Flush.
	PublishSync(ctx context.Context, m *Msg) error
	// Subscribe starts delivering messages on subject (with queue group
	// queue, if not empty) to Sink.Deliver with sid.
	Subscribe(sid uint32, subject, queue string) error
	// Unsubscribe stops the deliveries of sid.
	Unsubscribe(sid uint32) error
	// Cancel tells the responders of the request whose reply subject is
	// reply that the requester gave up.
	Cancel(reply string) error
	// Flush returns when everything published so far has reached the bus.
	Flush(ctx context.Context) error
	// Close disconnects at once. Sink gets no more events after it returns.
	Close() error
	// Info describes the transport as it is now.
	Info() TransportInfo
}

// Sink receives a Transport's events. Deliver, Cancel and Dropped may be
// called from the transport's reading goroutines; they do not block for
// long.
type Sink interface {
	// Deliver hands over a message for subscription sid.
	Deliver(sid uint32, m *Msg, f Flags)
	// Cancel says the requester of a request delivered with reply subject
	// reply gave up (cancelled, timed out or went away).
	Cancel(reply string)
	// Dropped says the bus dropped n messages for sid (a slow consumer).
	Dropped(sid uint32, n int)
	// State reports a change of the connection's state; err says why it
	// left StateConnected.
	State(s State, err error)
	// AsyncError reports an error about earlier work, such as a publish the
	// server refused.
	AsyncError(err error)
}

// Flags describe a published or delivered message.
type Flags uint8

const (
	// FlagRequest marks a request: the bus may track it so that the
	// responder learns when the requester goes away and the requester
	// learns when the responder does.
	FlagRequest Flags = 1 << iota
	// FlagReply marks a response to a request (the last one unless
	// FlagMore is set too).
	FlagReply
	// FlagMore marks a response that is not the last one (a stream chunk).
	FlagMore
)

// TransportInfo describes a transport.
type TransportInfo struct {
	Backend    string // "ipc", "ipc-local" or "nats"
	Server     string // the server's id or URL
	Identity   string // who the server says this connection is
	MaxPayload int    // largest message (headers + data) the bus accepts
	Connected  bool
	// TracksRequests: the bus follows each request to its responder, and
	// when a responder's connection breaks it answers the requests that
	// responder was serving (ErrResponderGone), so the Conn cancels them
	// at once. Without it (NATS), requests being served go on through a
	// reconnection, and their answers go out after it.
	TracksRequests bool
}

// State is a connection's state.
type State uint8

const (
	StateConnecting   State = iota // not yet connected
	StateConnected                 // connected (also after a reconnect)
	StateDisconnected              // the connection broke; reconnecting
	StateReconnected               // connected again after a disconnect (reported once, then Connected)
	StateDraining                  // draining: no new work
	StateClosed                    // closed for good
)

func (s State) String() string {
	switch s {
	case StateConnecting:
		return "connecting"
	case StateConnected:
		return "connected"
	case StateDisconnected:
		return "disconnected"
	case StateReconnected:
		return "reconnected"
	case StateDraining:
		return "draining"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}
