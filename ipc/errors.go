package ipc

import (
	"errors"
	"fmt"

	"github.com/procxy/procxy/internal/errid"
	"github.com/procxy/procxy/rpc"
)

// Sentinel errors. They are returned wrapped, with the subject or the
// cause; test for them with errors.Is.
var (
	// ErrClosed means the connection (or server) is closed. It matches
	// rpc.ErrClosed, as procxy.ErrClosed does: one name for a closed
	// connection in every package.
	ErrClosed = errid.Also("ipc: connection closed", rpc.ErrClosed)
	// ErrDraining means the connection is draining and takes no new work.
	ErrDraining = errors.New("ipc: connection draining")
	// ErrBadSubject means a subject does not follow the subject grammar.
	ErrBadSubject = errors.New("ipc: invalid subject")
	// ErrReservedSubject means an application published to a subject the
	// library reserves ($...).
	ErrReservedSubject = errors.New("ipc: reserved subject")
	// ErrBadHeader means a header key is reserved (Ipc-...) or malformed.
	ErrBadHeader = errors.New("ipc: invalid header")
	// ErrMaxPayload means a message is larger than the maximum message size;
	// the sender gets it before anything is sent. Use a stream for more.
	ErrMaxPayload = errors.New("ipc: message exceeds the maximum payload")
	// ErrNoResponders means a request was made to a subject nobody
	// subscribes to.
	ErrNoResponders = errors.New("ipc: no responders")
	// ErrNoSubscribers means a PublishSync reached no subscriber.
	ErrNoSubscribers = errors.New("ipc: no subscribers")
	// ErrResponderGone means the responder that had the request went away
	// (its connection closed or its process died) before it answered.
	ErrResponderGone = errors.New("ipc: responder went away before answering")
	// ErrConnectionLost means the connection to the server broke while a
	// request or stream was waiting; the request may or may not have run.
	ErrConnectionLost = errors.New("ipc: connection to the server lost")
	// ErrPermission means the server's permissions refused a publish, a
	// subscription or a request.
	ErrPermission = errors.New("ipc: permission denied")
	// ErrAuth means the server refused the connection's credentials.
	ErrAuth = errors.New("ipc: authentication failed")
	// ErrRateLimited means the sender's rate limit was exceeded; the message
	// was dropped.
	ErrRateLimited = errors.New("ipc: rate limit exceeded")
	// ErrSlowConsumer means messages for a subscription were dropped because
	// its queue (or the server's queue for the connection) was full.
	ErrSlowConsumer = errors.New("ipc: slow consumer, messages dropped")
	// ErrBufferFull means the buffer for publishes made while disconnected
	// is full.
	ErrBufferFull = errors.New("ipc: reconnect buffer full")
	// ErrNoReply means Respond was called on a message that expects no reply.
	ErrNoReply = errors.New("ipc: message has no reply subject")
	// ErrProtocol means the peer sent something that breaks the protocol.
	ErrProtocol = errors.New("ipc: protocol violation")
	// ErrCircuitOpen means a circuit breaker refused a request without
	// sending it, because recent requests to the subject failed.
	ErrCircuitOpen = errors.New("ipc: circuit open")
	// ErrStreamLost means chunks of a stream were lost on the way (a slow
	// consumer drop) so the stream cannot continue.
	ErrStreamLost = errors.New("ipc: stream lost chunks")
	// ErrChannelClosed means the other end of a channel closed it or went
	// away.
	ErrChannelClosed = errors.New("ipc: channel closed")
	// ErrServerShutdown means the server is shutting down and took no new work.
	ErrServerShutdown = errors.New("ipc: server shutting down")
	// ErrMaxConnections means the server refused a connection because it
	// has as many clients as its MaxConnections option allows.
	ErrMaxConnections = errors.New("ipc: server has too many connections")
)

// RemoteError is the error a responder returned, as the requester sees
// it: the same type procxy's other layers use. Its Is method matches on
// Code, so a sentinel *RemoteError per code works with errors.Is.
type RemoteError = rpc.RemoteError

// RequestError is the error of a request, stream or upload that failed: it
// names the subject and wraps the cause (a sentinel above, a *RemoteError or
// a context error).
type RequestError struct {
	Subject string
	Err     error
}

func (e *RequestError) Error() string { return fmt.Sprintf("ipc: request to %s: %v", e.Subject, e.Err) }
func (e *RequestError) Unwrap() error { return e.Err }

// statusError turns a status reply into the error the requester gets.
func statusError(m *Msg) error {
	switch m.meta.status {
	case statusFailed:
		return rpc.DecodeError(m.Data)
	case statusNoResponder:
		return ErrNoResponders
	case statusGone:
		return ErrResponderGone
	case statusDenied:
		return withDesc(ErrPermission, m.meta.desc)
	case statusTooLarge:
		return withDesc(ErrMaxPayload, m.meta.desc)
	case statusRateLimited:
		return ErrRateLimited
	case statusTimeout:
		return withDesc(errTimeoutStatus, m.meta.desc)
	case statusShutdown:
		return ErrServerShutdown
	}
	return fmt.Errorf("%w: unknown status %d %s", ErrProtocol, m.meta.status, m.meta.desc)
}

var errTimeoutStatus = errors.New("ipc: responder saw the deadline pass")

func withDesc(err error, desc string) error {
	if desc == "" {
		return err
	}
	return fmt.Errorf("%w: %s", err, desc)
}

// errorReply builds the status reply that carries err from a handler.
func errorReply(err error) *Msg {
	return &Msg{meta: meta{status: statusFailed}, Data: rpc.AppendError(nil, err)}
}
