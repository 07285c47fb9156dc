package natsipc

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/procxy/procxy/ipc"
)

const (
	// CancelPrefix starts the subjects of cancellations: a requester that
	// gives up publishes an empty message to CancelPrefix + the request's
	// reply subject, and every connection that serves requests listens to
	// CancelPrefix + ">" and cancels the matching request's context.
	CancelPrefix = "$IPC.CANCEL."

	// HeaderReserve is the part of the server's max_payload kept for the
	// library's own headers: a Conn's MaxPayload is the server's minus
	// this, so a message that passes the Conn's check always fits on the
	// wire, headers included.
	HeaderReserve = 1024

	// maxTracked bounds the requests remembered so that a permissions
	// error from the server can fail them at once.
	maxTracked = 1 << 16

	statusHeader = "Status" // nats.go's key for the status of a status message
	noResponders = "503"
)

// transport is the ipc.Transport over a *nats.Conn.
type transport struct {
	url                       string                 // what Connect dials; empty for a wrapped conn
	o                         ipc.Options            // filled
	owned                     bool                   // Close closes nc (Connect made it)
	srv                       *Server                // the embedded server Connect started for this conn; closed after nc
	dial                      dialer                 // dials for Connect's conns: Open's ctx first, then until Close
	pendingMsgs, pendingBytes int                    // nats.go's limits for each subscription
	nc                        *nats.Conn             // set before Open returns; never changes after
	sink                      ipc.Sink               // set by Open
	srvURL                    atomic.Pointer[string] // the connected server's URL (credentials redacted)
	maxPayload                atomic.Int64           // the connected server's max_payload
	connected                 atomic.Bool            // as nats.go's handlers last said

	// gate is read-held around every call into sink; Close write-locks it
	// to set closed, so that no Sink call runs or starts after Close.
	gate   sync.RWMutex
	closed bool // guarded by gate

	mu        sync.Mutex
	subs      map[uint32]*sub    // until nats.go has closed them, draining ones too; guarded by mu
	cancelSub *nats.Subscription // CancelPrefix + ">", made with the first subscription that can get requests; guarded by mu

	reqMu sync.Mutex
	reqs  map[string]string // reply → subject of requests sent and not answered yet; guarded by reqMu
}

// sub is one subscription of the transport.
type sub struct {
	sid      uint32
	inbox    bool // under _INBOX.: where answers come, never requests
	ns       *nats.Subscription
	gone     bool // unsubscribed, draining in nats.go; guarded by transport.mu
	reported int  // nats.go drops already reported to the sink; guarded by transport.mu
}

func newTransport(url string, o ipc.Options) *transport {
	t := &transport{url: url, o: o, subs: make(map[uint32]*sub), reqs: make(map[string]string)}
	t.dial.timeout = max(o.ConnectTimeout, 0) // net.Dialer: zero is none
	// nats.go's queue only hands messages over to the Conn, whose own
	// bounded queue is the one that fills up: keep it at least as large.
	t.pendingMsgs = max(o.SubPendingMsgs, ipc.DefaultSubPendingMsgs)
	t.pendingBytes = max(o.SubPendingBytes, ipc.DefaultSubPendingBytes)
	return t
}

// Open implements ipc.Transport: it connects (Connect) or hooks into the
// connection it was given (New).
func (t *transport) Open(ctx context.Context, s ipc.Sink) error {
	t.sink = s
	if t.nc != nil {
		return t.adopt()
	}
	nc, err := t.connect(ctx)
	if err != nil {
		return err
	}
	t.nc = nc
	t.noteServer(nc)
	s.State(ipc.StateConnected, nil)
	return nil
}

// noteServer records what Info says about the server nc is connected to
// (nats.go's handler goroutine, or Open).
func (t *transport) noteServer(nc *nats.Conn) {
	u := nc.ConnectedUrlRedacted()
	t.srvURL.Store(&u)
	t.maxPayload.Store(nc.MaxPayload())
	t.connected.Store(nc.IsConnected())
}

// call runs fn, a call into the sink, unless the transport is closed.
func (t *transport) call(fn func(ipc.Sink)) {
	t.gate.RLock()
	defer t.gate.RUnlock()
	if !t.closed {
		fn(t.sink)
	}
}

// Publish implements ipc.Transport.
func (t *transport) Publish(m *ipc.Msg, f ipc.Flags) error {
	track := f&ipc.FlagRequest != 0 && m.Reply != ""
	if track {
		t.track(m.Reply, m.Subject)
	}
	err := t.nc.PublishMsg(&nats.Msg{Subject: m.Subject, Reply: m.Reply, Header: nats.Header(ipc.WireHeader(m)), Data: m.Data})
	if err != nil {
		if track {
			t.answered(m.Reply)
		}
		return mapErr(err)
	}
	return nil
}

// PublishSync implements ipc.Transport. NATS does not acknowledge a
// publish, so this publishes, flushes, and then looks whether the server
// refused the subject meanwhile: a permissions error arrives before the
// answer to the flush.
func (t *transport) PublishSync(ctx context.Context, m *ipc.Msg) error {
	before := t.nc.LastError()
	if err := t.Publish(m, 0); err != nil {
		return err
	}
	if err := t.Flush(ctx); err != nil {
		return err
	}
	// Each refusal is a new error value, so a changed LastError naming
	// this subject is this publish's. (Only such an error, a pointer
	// nats.go made, is compared: comparing any error could panic.)
	if err := t.nc.LastError(); err != nil {
		if subj, ok := deniedPublish(err); ok && subj == m.Subject && err != before {
			return fmt.Errorf("%w: publish to %s: %w", ipc.ErrPermission, m.Subject, err)
		}
	}
	return nil
}

// Subscribe implements ipc.Transport.
func (t *transport) Subscribe(sid uint32, subject, queue string) error {
	s := &sub{sid: sid, inbox: strings.HasPrefix(subject, ipc.InboxPrefix)}
	if !s.inbox {
		// This subscription may receive requests: listen for their
		// cancellations first, so that none can arrive before.
		if err := t.listenCancels(); err != nil {
			return err
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	ns, err := t.nc.QueueSubscribe(subject, queue, func(nm *nats.Msg) { t.deliver(s, nm) })
	if err != nil {
		return mapErr(err)
	}
	_ = ns.SetPendingLimits(t.pendingMsgs, t.pendingBytes)
	ns.SetClosedHandler(func(string) { t.forget(s) })
	s.ns = ns
	t.subs[sid] = s
	return nil
}

// forget drops a subscription nats.go has closed.
func (t *transport) forget(s *sub) {
	t.mu.Lock()
	if t.subs[s.sid] == s {
		delete(t.subs, s.sid)
	}
	t.mu.Unlock()
}

// listenCancels subscribes to cancellations once.
func (t *transport) listenCancels() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cancelSub != nil {
		return nil
	}
	ns, err := t.nc.Subscribe(CancelPrefix+">", func(nm *nats.Msg) {
		reply := nm.Subject[len(CancelPrefix):]
		t.call(func(s ipc.Sink) { s.Cancel(reply) })
	})
	if err != nil {
		return mapErr(err)
	}
	_ = ns.SetPendingLimits(-1, -1) // cancellations are tiny and must not be lost
	t.cancelSub = ns
	return nil
}

// deliver hands a message from nats.go to the sink (a subscription's
// goroutine in nats.go).
func (t *transport) deliver(s *sub, nm *nats.Msg) {
	m := &ipc.Msg{Subject: nm.Subject, Reply: nm.Reply, Data: nm.Data}
	if len(nm.Header) > 0 {
		h := ipc.Header(nm.Header)
		if len(nm.Data) == 0 && h.Get(statusHeader) == noResponders {
			// The server's answer to a request nobody could take: the
			// status the Conn turns into ErrNoResponders.
			h["Ipc-Status"] = []string{noResponders}
		}
		if err := ipc.SetWireHeader(m, h); err != nil {
			t.call(func(sk ipc.Sink) { sk.AsyncError(fmt.Errorf("natsipc: message on %s: %w", nm.Subject, err)) })
			return
		}
	}
	if s.inbox {
		t.answered(nm.Subject)
	}
	var f ipc.Flags
	if m.Reply != "" {
		f = ipc.FlagRequest
	}
	t.call(func(sk ipc.Sink) { sk.Deliver(s.sid, m, f) })
}

// Unsubscribe implements ipc.Transport. The subscription is drained: the
// server stops sending at once, and what it sent before still reaches the
// sink, which is what Conn.Drain relies on.
func (t *transport) Unsubscribe(sid uint32) error {
	t.mu.Lock()
	s := t.subs[sid]
	if s == nil || s.gone {
		t.mu.Unlock()
		return nil
	}
	s.gone = true
	t.mu.Unlock()
	if err := s.ns.Drain(); err != nil && !errors.Is(err, nats.ErrBadSubscription) {
		return mapErr(err)
	}
	return nil
}

// Cancel implements ipc.Transport: see CancelPrefix.
func (t *transport) Cancel(reply string) error {
	t.answered(reply)
	return mapErr(t.nc.Publish(CancelPrefix+reply, nil))
}

// Flush implements ipc.Transport: a PING answered by a PONG, and then a
// barrier through every subscription, so that whatever the server sent
// before its PONG has been handed to the sink when Flush returns.
func (t *transport) Flush(ctx context.Context) error {
	if !t.nc.IsConnected() {
		if t.nc.IsClosed() {
			return ipc.ErrClosed
		}
		return ipc.ErrConnectionLost
	}
	if err := flushNATS(ctx, t.nc); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, nats.ErrConnectionClosed) && !t.nc.IsClosed() {
			return fmt.Errorf("%w: %w", ipc.ErrConnectionLost, err)
		}
		return mapErr(err)
	}
	done := make(chan struct{})
	if err := t.nc.Barrier(func() { close(done) }); err != nil {
		return mapErr(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	t.mu.Lock()
	for _, s := range t.subs {
		t.reportDropsLocked(s)
	}
	t.mu.Unlock()
	return nil
}

// flushNATS waits for the server's PONG to a PING.
func flushNATS(ctx context.Context, nc *nats.Conn) error {
	if _, ok := ctx.Deadline(); !ok {
		// nats.go insists on a deadline; the wait ends anyway when the
		// PONG comes, the connection breaks or ctx ends.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 365*24*time.Hour)
		defer cancel()
	}
	return nc.FlushWithContext(ctx)
}

// Close implements ipc.Transport. A connection made by Connect is closed
// (after flushing what was published), and so is the server Connect
// started; a connection given to New stays open, without our
// subscriptions.
func (t *transport) Close() error {
	t.gate.Lock()
	if t.closed {
		t.gate.Unlock()
		return nil
	}
	t.closed = true
	t.gate.Unlock()
	t.connected.Store(false)
	t.dial.stop()
	if t.nc != nil {
		if t.owned {
			t.nc.Close()
		} else {
			t.mu.Lock()
			var subs []*nats.Subscription
			for _, s := range t.subs {
				subs = append(subs, s.ns)
			}
			cs := t.cancelSub
			t.cancelSub = nil
			t.mu.Unlock()
			for _, ns := range subs {
				_ = ns.Unsubscribe()
			}
			if cs != nil {
				_ = cs.Unsubscribe()
			}
		}
	}
	if t.srv != nil {
		return t.srv.Close()
	}
	return nil
}

// Info implements ipc.Transport. It is called for every publish, so it
// only reads what the handlers recorded.
func (t *transport) Info() ipc.TransportInfo {
	info := ipc.TransportInfo{
		Backend:    "nats",
		MaxPayload: max(int(t.maxPayload.Load())-HeaderReserve, 0),
		Connected:  t.connected.Load(),
	}
	if u := t.srvURL.Load(); u != nil {
		info.Server = *u
	}
	return info
}

// reportDropsLocked tells the sink about messages nats.go dropped for s
// since the last report.
func (t *transport) reportDropsLocked(s *sub) {
	n, err := s.ns.Dropped()
	if err != nil || n <= s.reported {
		return
	}
	d := n - s.reported
	s.reported = n
	t.call(func(sk ipc.Sink) { sk.Dropped(s.sid, d) })
}

// track remembers a request until its first answer, so that the server
// refusing its subject can fail it at once.
func (t *transport) track(reply, subject string) {
	t.reqMu.Lock()
	if len(t.reqs) < maxTracked {
		t.reqs[reply] = subject
	}
	t.reqMu.Unlock()
}

// answered forgets a tracked request.
func (t *transport) answered(reply string) {
	t.reqMu.Lock()
	if len(t.reqs) > 0 {
		delete(t.reqs, reply)
	}
	t.reqMu.Unlock()
}

// refused fails at once the requests to subject, which the server's
// permissions refused: each gets a 403 status on its reply subject, as
// from the ipc server.
func (t *transport) refused(subject string, cause error) {
	var replies []string
	t.reqMu.Lock()
	for reply, s := range t.reqs {
		if s == subject {
			replies = append(replies, reply)
			delete(t.reqs, reply)
		}
	}
	t.reqMu.Unlock()
	if len(replies) == 0 {
		return
	}
	t.mu.Lock()
	var inboxes []*sub
	for _, s := range t.subs {
		if s.inbox && !s.gone {
			inboxes = append(inboxes, s)
		}
	}
	t.mu.Unlock()
	for _, reply := range replies {
		for _, s := range inboxes {
			if ipc.SubjectMatches(s.ns.Subject, reply) {
				m := &ipc.Msg{Subject: reply}
				if err := ipc.SetWireHeader(m, ipc.Header{"Ipc-Status": {"403 " + cause.Error()}}); err == nil {
					t.call(func(sk ipc.Sink) { sk.Deliver(s.sid, m, 0) })
				}
				break
			}
		}
	}
}

// forgetRequests drops the tracked requests: after a disconnect the Conn
// fails them itself.
func (t *transport) forgetRequests() {
	t.reqMu.Lock()
	clear(t.reqs)
	t.reqMu.Unlock()
}
