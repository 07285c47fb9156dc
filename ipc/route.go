package ipc

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/procxy/procxy/rpc/wire"
)

// router is one reader's routing state: its cache of subject matches and
// the clients it queued output for since the last flush. Each client
// connection has one, used by the goroutine holding its read turn; the
// server's own endpoint takes one per call.
type router struct {
	srv     *Server
	cache   matchCache
	batch   uint64
	touched []*peer
	scratch matchResult // the match of a subject not worth caching
	behind  *peer       // the recipient furthest behind after the last flush, if far
	timer   *time.Timer // for stall
	queued  int         // bytes queued for recipients since the last flush
	// inline: this router is a client reader's, which may run a handler of
	// the server's own endpoint itself (slot) after routing a frame.
	inline bool
	slot   inlineSlot
}

// flushEvery is how many bytes a reader queues for recipients before it
// flushes even though more input is buffered: with large messages the
// input is rarely empty (a partial frame waits), and recipients must not
// wait for it.
const flushEvery = 256 << 10

func (s *Server) newRouter() *router { return &router{srv: s, batch: s.batchSeq.Add(1)} }

// lookup returns the subscriptions subject reaches. Reply subjects are
// used once: they are matched into a scratch result, not cached.
func (rt *router) lookup(subject []byte) *matchResult {
	if len(subject) > len(InboxPrefix) && string(subject[:len(InboxPrefix)]) == InboxPrefix {
		rt.scratch.plain, rt.scratch.queues = rt.scratch.plain[:0], rt.scratch.queues[:0]
		rt.srv.sl.matchInto(bstr(subject), &rt.scratch)
		return &rt.scratch
	}
	return rt.cache.lookup(rt.srv.sl, subject)
}

// touch remembers that q has output queued.
func (rt *router) touch(q *peer) {
	if q.nc != nil && q.mark.Swap(rt.batch) != rt.batch {
		rt.touched = append(rt.touched, q)
	}
}

// flush writes what this router queued, without blocking: a client whose
// socket is full is left to its writer goroutine.
func (rt *router) flush() {
	most := rt.srv.opts.MaxPending / 4
	rt.behind = nil
	for i, q := range rt.touched {
		q.out.mu.Lock()
		q.reportDropsLocked()
		q.out.mu.Unlock()
		q.out.flush(false)
		q.out.mu.Lock()
		if n := q.out.pendingLocked(); n > most && !q.stuck {
			most, rt.behind = n, q
		}
		q.out.mu.Unlock()
		rt.touched[i] = nil
	}
	rt.touched = rt.touched[:0]
	rt.queued = 0
	rt.batch = rt.srv.batchSeq.Add(1)
}

// maxStall bounds how long a publisher's reading waits for a recipient to
// catch up (stall).
const maxStall = 10 * time.Millisecond

// stall slows down the publisher this router reads for when a recipient
// of its messages fell far behind: its reading waits until the recipient's
// queue is down to an eighth of MaxPending, for at most maxStall. So a
// fast publisher runs at its slowest subscriber's pace instead of filling
// that subscriber's queue and losing messages. A recipient that makes no
// progress at all for stuckAfter is stuck: nobody waits for it again until
// it catches up, and messages to it are dropped past MaxPending, so a dead
// subscriber slows a publisher for half a second at most.
func (rt *router) stall() {
	q := rt.behind
	if q == nil {
		return
	}
	rt.behind = nil
	low := rt.srv.opts.MaxPending / 8
	ch := q.out.drained(low)
	if ch == nil {
		return
	}
	if rt.timer == nil {
		rt.timer = time.NewTimer(maxStall)
	} else {
		rt.timer.Reset(maxStall)
	}
	select {
	case <-ch:
		rt.timer.Stop()
	case <-rt.timer.C:
		now := time.Now()
		q.out.mu.Lock()
		switch n := q.out.pendingLocked(); {
		case q.stallFrom.IsZero() || n < q.stallLevel: // it moves: watch again from here
			q.stallFrom, q.stallLevel = now, n
		case now.Sub(q.stallFrom) > stuckAfter:
			q.stuck = true // reset when it drains (reportDropsLocked)
			q.stallFrom = time.Time{}
		}
		q.out.mu.Unlock()
	}
}

// stuckAfter is how long a recipient may make no progress at all, while
// publishers wait for it, before it counts as stuck.
const stuckAfter = 500 * time.Millisecond

// metaSlack is room for the library's reserved headers beyond MaxPayload.
const metaSlack = 1024

// publish routes one message from p. It returns how many subscriptions it
// reached, why it was refused (answered already, not fatal), or a protocol
// error that ends p's connection.
func (s *Server) publish(rt *router, p *peer, payload []byte, fl wire.Flags, ackID uint32) (int, error, error) {
	if fl&^wfAll != 0 {
		return 0, nil, fmt.Errorf("%w: PUB flags %#x", ErrProtocol, uint8(fl))
	}
	w, err := parseMsg(payload)
	if err == nil {
		err = checkHeaderBlock(w.header) // every subscriber must be able to decode it
	}
	if err != nil {
		return 0, nil, err
	}
	p.inMsgs.Add(1)
	s.stats.inMsgs.Add(1)
	s.stats.inBytes.Add(uint64(len(w.data)))
	if err := s.admitPub(p, w, fl, len(payload)); err != nil {
		s.refusePub(rt, p, w, fl, ackID, err)
		return 0, err, nil
	}
	res := rt.lookup(w.subject)
	subject := bstr(w.subject) // valid until the next frame is read; never kept
	// A request is tracked before it is delivered: once queued for a
	// responder, another router's flush may send it, and the answer (or
	// the responder's going away) may come before this loop ends.
	var t *tracked
	if fl&wfRequest != 0 && len(w.reply) > 0 {
		t = s.track(string(w.reply), p)
	}
	n := 0
	for _, sub := range res.plain {
		if sub.peer == p && p.noEcho || sub.peer.perms != nil && !sub.peer.perms.canReceive(subject) {
			continue
		}
		if s.deliverTracked(rt, sub, payload, fl, w.reply, t) {
			n++
		}
	}
	for _, group := range res.queues {
		start := rand.IntN(len(group))
		for i := range group {
			sub := group[(start+i)%len(group)]
			if sub.peer == p && p.noEcho || sub.peer.perms != nil && !sub.peer.perms.canReceive(subject) {
				continue
			}
			if s.deliverTracked(rt, sub, payload, fl, w.reply, t) {
				n++
				break
			}
		}
	}
	if t != nil && n == 0 {
		s.untrack(string(w.reply), t)
		s.stats.noResp.Add(1)
		s.sendStatus(rt, string(w.reply), statusNoResponder, "")
	}
	if fl&wfReply != 0 && fl&wfMore == 0 {
		s.replied(rt, p, subject)
	}
	if fl&wfAck != 0 {
		var err error
		if n == 0 {
			err = fmt.Errorf("%w: %s", ErrNoSubscribers, subject)
		}
		p.ack(rt, ackID, err)
	}
	return n, nil, nil
}

// admitPub applies the checks a message must pass before it is routed.
func (s *Server) admitPub(p *peer, w wireMsg, fl wire.Flags, size int) error {
	subject := bstr(w.subject)
	if err := checkSubject(subject, false); err != nil {
		return err
	}
	if len(w.reply) > 0 {
		if err := checkSubject(bstr(w.reply), false); err != nil {
			return fmt.Errorf("reply subject: %w", err)
		}
	}
	if len(w.header)+len(w.data) > s.opts.MaxPayload+metaSlack {
		return fmt.Errorf("%w: %d bytes, the server's limit is %d", ErrMaxPayload, len(w.header)+len(w.data), s.opts.MaxPayload)
	}
	if p.local == nil && (strings.HasPrefix(subject, subjectBroadcast+".") || strings.HasPrefix(subject, subjectPresence+".")) {
		return fmt.Errorf("%w: only the server publishes to %s", ErrPermission, subject)
	}
	if fl&wfRequest != 0 && s.shutting.Load() {
		return ErrServerShutdown
	}
	if !p.perms.canPublish(subject) && !p.mayRespond(subject) {
		s.stats.denied.Add(1)
		return fmt.Errorf("%w: publish to %s", ErrPermission, subject)
	}
	if !p.limit.allow(size) {
		s.stats.limited.Add(1)
		return fmt.Errorf("%w: %s", ErrRateLimited, p.ident.Name)
	}
	return nil
}

// mayRespond reports whether subject is the reply subject of a request p
// received, and p's permissions allow responses.
func (p *peer) mayRespond(subject string) bool {
	if p.replies == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.replies.has(subject)
}

// refusePub tells the publisher why its message was not routed: a status
// reply for a request, an ACK for PublishSync, an ERR otherwise.
func (s *Server) refusePub(rt *router, p *peer, w wireMsg, fl wire.Flags, ackID uint32, err error) {
	s.log.Debug("ipc: publish refused", "client", p.id, "err", err)
	switch {
	case fl&wfAck != 0:
		p.ack(rt, ackID, err)
	case fl&wfRequest != 0 && len(w.reply) > 0 && ValidLiteral(bstr(w.reply)):
		code := statusDenied
		switch {
		case errors.Is(err, ErrMaxPayload):
			code = statusTooLarge
		case errors.Is(err, ErrRateLimited):
			code = statusRateLimited
		case errors.Is(err, ErrServerShutdown):
			code = statusShutdown
		case errors.Is(err, ErrBadSubject):
			p.sendErr(0, err)
			rt.touch(p)
			return
		}
		s.sendStatus(rt, string(w.reply), code, err.Error())
	default:
		p.sendErr(0, err)
		rt.touch(p)
	}
}

// ack answers a PublishSync.
func (p *peer) ack(rt *router, id uint32, err error) {
	if p.local != nil {
		return // the local transport gets the result from publish itself
	}
	var b []byte
	if err != nil {
		b = encodeInfo(&errInfo{Code: codeOf(err), Message: err.Error()})
	}
	p.out.mu.Lock()
	p.out.addLocked(opAck, 0, id, b)
	p.out.mu.Unlock()
	rt.touch(p)
}

// deliver queues payload for one subscription; it reports false when the
// subscriber is gone or its queue is full (the message is then dropped
// and counted, and the subscriber told later).
func (s *Server) deliver(rt *router, sub *hubSub, payload []byte, fl wire.Flags, reply []byte) bool {
	q := sub.peer
	if q.replies != nil && len(reply) > 0 {
		q.mu.Lock()
		q.replies.add(string(reply))
		q.mu.Unlock()
	}
	if q.local != nil {
		if q.isClosed() {
			return false
		}
		q.outMsgs.Add(1)
		s.stats.outMsgs.Add(1)
		q.local.deliver(rt, sub.sid, payload, fl&(wfRequest|wfReply|wfMore))
		return true
	}
	o := q.out
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return false
	}
	if o.pendingLocked()+wire.HeaderSize+len(payload) > s.opts.MaxPending {
		q.drops[sub.sid]++
		o.mu.Unlock()
		q.dropped.Add(1)
		s.stats.slow.Add(1)
		return false
	}
	o.addLocked(opMsg, fl&(wfRequest|wfReply|wfMore), sub.sid, payload)
	o.mu.Unlock()
	rt.queued += wire.HeaderSize + len(payload)
	q.outMsgs.Add(1)
	s.stats.outMsgs.Add(1)
	s.stats.outBytes.Add(uint64(len(payload)))
	rt.touch(q)
	return true
}

// sendStatus sends a status reply (no responders, responder gone, …) to
// the requester listening on reply.
func (s *Server) sendStatus(rt *router, reply string, code int, desc string) {
	payload := appendMsg(nil, &Msg{Subject: reply, meta: meta{status: code, desc: desc}})
	res := rt.lookup([]byte(reply))
	for _, sub := range res.plain {
		s.deliver(rt, sub, payload, wfReply, nil)
	}
	for _, group := range res.queues {
		s.deliver(rt, group[rand.IntN(len(group))], payload, wfReply, nil)
	}
}

// sendCancel tells responder q that the request answered at reply is over.
func (s *Server) sendCancel(rt *router, q *peer, reply string) {
	if q.local != nil {
		q.local.cancel(reply)
		return
	}
	o := q.out
	o.mu.Lock()
	if !o.closed {
		o.addLocked(opCancel, 0, 0, []byte(reply))
	}
	o.mu.Unlock()
	rt.touch(q)
}

// tracked is a request in flight: who asked, and who got it.
type tracked struct {
	requester  *peer
	responders []*peer
	one        [2]*peer // responders' usual storage
}

// track starts tracking the request answered at reply; its responders
// are added as it is delivered to them.
func (s *Server) track(reply string, requester *peer) *tracked {
	t := &tracked{requester: requester}
	t.responders = t.one[:0]
	s.reqMu.Lock()
	s.reqs[reply] = t
	s.reqMu.Unlock()
	return t
}

// untrack forgets a request that reached nobody.
func (s *Server) untrack(reply string, t *tracked) {
	s.reqMu.Lock()
	if s.reqs[reply] == t {
		delete(s.reqs, reply)
		s.reqsIdleLocked()
	}
	s.reqMu.Unlock()
}

// deliverTracked delivers a message and, for a request (t not nil), makes
// the subscriber one of its responders first, unless it is going away.
func (s *Server) deliverTracked(rt *router, sub *hubSub, payload []byte, fl wire.Flags, reply []byte, t *tracked) bool {
	if t == nil {
		return s.deliver(rt, sub, payload, fl, reply)
	}
	q := sub.peer
	// Under q.mu: either forgetPeer, which runs after q is marked closed,
	// finds q among the responders, or q is seen closed here.
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	s.reqMu.Lock()
	t.responders = append(t.responders, q)
	s.reqMu.Unlock()
	q.mu.Unlock()
	if s.deliver(rt, sub, payload, fl, reply) {
		return true
	}
	s.reqMu.Lock()
	if i := index(t.responders, q); i >= 0 {
		t.responders = append(t.responders[:i], t.responders[i+1:]...)
	}
	s.reqMu.Unlock()
	return false
}

// replied ends the request answered at reply when p, one of its
// responders, sends its last response; the other responders are told.
func (s *Server) replied(rt *router, p *peer, reply string) {
	s.reqMu.Lock()
	t := s.reqs[reply]
	if t == nil || !contains(t.responders, p) {
		s.reqMu.Unlock()
		return
	}
	delete(s.reqs, reply)
	s.reqsIdleLocked()
	s.reqMu.Unlock()
	for _, q := range t.responders {
		if q != p {
			s.sendCancel(rt, q, reply)
		}
	}
}

// cancelRequest handles a requester giving up on the request at reply.
func (s *Server) cancelRequest(rt *router, p *peer, reply string) {
	s.reqMu.Lock()
	t := s.reqs[reply]
	if t == nil || t.requester != p {
		s.reqMu.Unlock()
		return
	}
	delete(s.reqs, reply)
	s.reqsIdleLocked()
	s.reqMu.Unlock()
	for _, q := range t.responders {
		s.sendCancel(rt, q, reply)
	}
}

// forgetPeer settles the requests of a peer that went away: those it made
// are cancelled at their responders; those it was answering fail at their
// requesters with ErrResponderGone once no responder is left.
func (s *Server) forgetPeer(rt *router, p *peer) {
	type cancel struct {
		q     *peer
		reply string
	}
	var cancels []cancel
	var gone []string
	s.reqMu.Lock()
	for reply, t := range s.reqs {
		if t.requester == p {
			delete(s.reqs, reply)
			for _, q := range t.responders {
				cancels = append(cancels, cancel{q, reply})
			}
			continue
		}
		if i := index(t.responders, p); i >= 0 {
			t.responders = append(t.responders[:i], t.responders[i+1:]...)
			if len(t.responders) == 0 {
				delete(s.reqs, reply)
				gone = append(gone, reply)
			}
		}
	}
	s.reqsIdleLocked()
	s.reqMu.Unlock()
	for _, c := range cancels {
		s.sendCancel(rt, c.q, c.reply)
	}
	if s.isClosed() {
		return // every connection is closing: its requesters learn that instead
	}
	for _, reply := range gone {
		s.sendStatus(rt, reply, statusGone, fmt.Sprintf("%s (client %d) disconnected", p.ident.Name, p.id))
	}
}

// reqsIdleLocked wakes Shutdown when no request is in flight.
func (s *Server) reqsIdleLocked() {
	if len(s.reqs) == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

func contains(ps []*peer, p *peer) bool { return index(ps, p) >= 0 }

func index(ps []*peer, p *peer) int {
	for i, q := range ps {
		if q == p {
			return i
		}
	}
	return -1
}

// subscribe registers a subscription of p.
func (s *Server) subscribe(p *peer, sid uint32, subject, queue string) error {
	if err := checkSubject(subject, true); err != nil {
		return err
	}
	if queue != "" {
		if err := checkSubject(queue, false); err != nil {
			return fmt.Errorf("queue group: %w", err)
		}
	}
	if !p.perms.canSubscribe(subject) {
		s.stats.denied.Add(1)
		return fmt.Errorf("%w: subscribe to %s", ErrPermission, subject)
	}
	sub := &hubSub{peer: p, sid: sid, subject: subject, queue: queue}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if old := p.subs[sid]; old != nil {
		s.sl.remove(old)
	}
	p.subs[sid] = sub
	s.sl.insert(sub)
	return nil
}

// unsubscribe removes a subscription of p.
func (s *Server) unsubscribe(p *peer, sid uint32) {
	p.mu.Lock()
	sub := p.subs[sid]
	delete(p.subs, sid)
	p.mu.Unlock()
	if sub != nil {
		s.sl.remove(sub)
	}
}
