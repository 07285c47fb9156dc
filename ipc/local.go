package ipc

import (
	"context"
	"fmt"
	"sync"

	"github.com/procxy/procxy/rpc/wire"
)

// localTransport is the Transport of the server's own endpoint: it routes
// through the server directly, without a socket.
type localTransport struct {
	srv  *Server
	peer *peer
	sink Sink
}

var routers sync.Pool // *router, keyed by nothing: the server is set on use

var payloads = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// Open implements Transport.
func (t *localTransport) Open(ctx context.Context, s Sink) error {
	t.sink = s
	p := t.srv.newPeer("server", Identity{Name: "server", Method: "local", UID: -1, GID: -1, PID: -1}, nil)
	p.perms, p.limit, p.replies = nil, nil, nil
	p.local = t
	t.peer = p
	if err := t.srv.register(p); err != nil {
		return ErrClosed
	}
	s.State(StateConnected, nil)
	return nil
}

func (t *localTransport) router() *router {
	if rt, ok := routers.Get().(*router); ok && rt.srv == t.srv {
		return rt
	}
	return t.srv.newRouter()
}

func (t *localTransport) done(rt *router) {
	rt.flush()
	routers.Put(rt)
}

// route publishes m through the server and returns how many
// subscriptions it reached and why it was refused.
func (t *localTransport) route(m *Msg, fl Flags, ack bool) (int, error) {
	if t.peer.isClosed() {
		return 0, ErrClosed
	}
	bp := payloads.Get().(*[]byte)
	*bp = appendMsg((*bp)[:0], m)
	wf := wireFlags(fl)
	if ack {
		wf |= wfAck
	}
	rt := t.router()
	n, refused, err := t.srv.publish(rt, t.peer, *bp, wf, 0)
	t.done(rt)
	if cap(*bp) <= 1<<20 {
		payloads.Put(bp)
	}
	if err != nil {
		return 0, err
	}
	return n, refused
}

// Publish implements Transport.
func (t *localTransport) Publish(m *Msg, f Flags) error {
	_, err := t.route(m, f, false)
	return err
}

// PublishSync implements Transport.
func (t *localTransport) PublishSync(ctx context.Context, m *Msg) error {
	n, err := t.route(m, 0, true)
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w: %s", ErrNoSubscribers, m.Subject)
	}
	return nil
}

// Subscribe implements Transport.
func (t *localTransport) Subscribe(sid uint32, subject, queue string) error {
	return t.srv.subscribe(t.peer, sid, subject, queue)
}

// Unsubscribe implements Transport.
func (t *localTransport) Unsubscribe(sid uint32) error {
	t.srv.unsubscribe(t.peer, sid)
	return nil
}

// Cancel implements Transport.
func (t *localTransport) Cancel(reply string) error {
	rt := t.router()
	t.srv.cancelRequest(rt, t.peer, reply)
	t.done(rt)
	return nil
}

// Flush implements Transport: routing is synchronous, so what was
// published has reached the server already.
func (t *localTransport) Flush(ctx context.Context) error {
	if t.peer.isClosed() {
		return ErrClosed
	}
	return ctx.Err()
}

// Close implements Transport.
func (t *localTransport) Close() error {
	t.peer.close(ErrClosed)
	return nil
}

// Info implements Transport.
func (t *localTransport) Info() TransportInfo {
	return TransportInfo{Backend: "ipc-local", Server: t.srv.id, Identity: "server",
		MaxPayload: t.srv.opts.MaxPayload, Connected: !t.peer.isClosed(), TracksRequests: true}
}

// deliver hands a routed message to the endpoint (copying it: payload
// belongs to the router).
// A client's reader offers to run the handler inline (see inlineSlot).
func (t *localTransport) deliver(rt *router, sid uint32, payload []byte, fl wire.Flags) {
	m, err := decodeMsg(payload)
	if err != nil { // the server encoded or checked it: cannot happen
		t.sink.AsyncError(err)
		return
	}
	if s, ok := t.sink.(sink); ok && rt.inline {
		s.c.deliver(sid, m, apiFlags(fl), &rt.slot)
		return
	}
	t.sink.Deliver(sid, m, apiFlags(fl))
}

// cancel tells the endpoint a requester gave up.
func (t *localTransport) cancel(reply string) { t.sink.Cancel(reply) }

// asyncError reports a refusal to the endpoint.
func (t *localTransport) asyncError(err error) { t.sink.AsyncError(err) }
