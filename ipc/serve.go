package ipc

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errRequesterGone is the cause of a responder's context ending because
// the requester cancelled, timed out or went away.
var errRequesterGone = errors.New("ipc: the requester gave up")

// served is the context of a request while a responder works on it. It is
// cancelled when the requester gives up, when the connection ends, and at
// the requester's deadline; the first response releases it.
type served struct {
	conn     *Conn
	reply    string
	deadline time.Time

	mu    sync.Mutex
	done  chan struct{} // made on first use; guarded by mu
	err   error         // guarded by mu
	cause error         // guarded by mu
	timer *time.Timer   // closes done at the deadline; guarded by mu
	alive *time.Timer   // sends the requester a sign of life (Keepalive); guarded by mu
}

func (s *served) Deadline() (time.Time, bool) { return s.deadline, !s.deadline.IsZero() }
func (s *served) Value(key any) any           { return nil }

func (s *served) Done() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done == nil {
		s.done = make(chan struct{})
		if s.err != nil {
			close(s.done)
		} else if !s.deadline.IsZero() {
			s.timer = time.AfterFunc(time.Until(s.deadline), func() { s.cancelWith(context.DeadlineExceeded, nil) })
		}
	}
	return s.done
}

func (s *served) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil && !s.deadline.IsZero() && !time.Now().Before(s.deadline) {
		s.err = context.DeadlineExceeded
	}
	return s.err
}

func (s *served) cancel(cause error) { s.cancelWith(context.Canceled, cause) }

func (s *served) cancelWith(err, cause error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.err, s.cause = err, cause
	if s.done != nil {
		close(s.done)
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	if s.alive != nil {
		s.alive.Stop()
	}
}

func (s *served) String() string { return "ipc.Msg.Context(" + s.reply + ")" }

// Cause returns why a request's context ended: errRequesterGone, the
// connection's error, or nil while it is open or when it ended normally.
func Cause(ctx context.Context) error {
	if s, ok := ctx.(*served); ok {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.cause
	}
	return context.Cause(ctx)
}

// track starts the context of a request m that this connection serves.
func (c *Conn) track(m *Msg) *served {
	s := &served{conn: c, reply: m.Reply}
	if m.meta.timeout > 0 {
		s.deadline = time.Now().Add(m.meta.timeout)
	}
	m.serve = s
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		s.cancel(ErrClosed)
		return s
	}
	if c.gaveUp.take(m.Reply) {
		c.mu.Unlock()
		s.cancel(errRequesterGone)
		return s
	}
	c.serving[m.Reply] = s
	c.mu.Unlock()
	if d := m.meta.keepalive; d > 0 {
		c.keepAlive(s, d)
	}
	return s
}

// keepAlive tells the requester of s that it is still being worked on,
// every d, until it is answered or abandoned. It is a timer, not a
// goroutine: most requests are answered before it first fires.
func (c *Conn) keepAlive(s *served, d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.alive = time.AfterFunc(d, func() {
		s.mu.Lock()
		over := s.err != nil
		if !over {
			s.alive.Reset(d)
		}
		s.mu.Unlock()
		if !over {
			_ = c.publish(&Msg{Subject: s.reply, meta: meta{kind: kindAlive}}, FlagReply|FlagMore)
		}
	})
}

// endServe releases the context of a request once it is answered (or
// abandoned without an answer).
func (c *Conn) endServe(m *Msg) {
	s := m.serve
	if s == nil {
		return
	}
	c.mu.Lock()
	if c.serving[s.reply] == s {
		delete(c.serving, s.reply)
		c.servingIdleLocked()
	}
	c.mu.Unlock()
	s.cancel(nil)
}

// servingIdleLocked wakes waitServing when no request is being served.
func (c *Conn) servingIdleLocked() {
	if len(c.serving) == 0 && c.idle != nil {
		close(c.idle)
		c.idle = nil
	}
}

// cancelServing cancels the context of the request answered at reply.
func (c *Conn) cancelServing(reply string, cause error) {
	c.mu.Lock()
	s := c.serving[reply]
	if s == nil {
		// Not tracked yet: the request may wait behind a busy handler of
		// an ordered subscription, which makes its context only when it
		// asks for it. That context must start cancelled.
		c.gaveUp.add(reply)
	}
	delete(c.serving, reply)
	c.servingIdleLocked()
	c.mu.Unlock()
	if s != nil {
		s.cancel(cause)
	}
}

// gaveUpSet holds the reply subjects of the most recent requests whose
// requester gave up before the request's context was made. Most belong to
// requests answered already or never to be asked for their context; the
// oldest go first.
type gaveUpSet struct {
	m     map[string]struct{}
	order []string
}

const maxGaveUp = 1024

func (g *gaveUpSet) add(reply string) {
	if g.m == nil {
		g.m = make(map[string]struct{})
	}
	if _, ok := g.m[reply]; ok {
		return
	}
	if len(g.order) >= maxGaveUp {
		delete(g.m, g.order[0])
		g.order = g.order[1:]
	}
	g.m[reply] = struct{}{}
	g.order = append(g.order, reply)
}

// take reports whether reply was given up, and forgets it.
func (g *gaveUpSet) take(reply string) bool {
	if _, ok := g.m[reply]; !ok {
		return false
	}
	delete(g.m, reply) // its order entry goes with the oldest
	return true
}

// waitServing waits until no request is being served, or ctx ends.
func (c *Conn) waitServing(ctx context.Context) {
	c.mu.Lock()
	if len(c.serving) == 0 {
		c.mu.Unlock()
		return
	}
	if c.idle == nil {
		c.idle = make(chan struct{})
	}
	idle := c.idle
	c.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
	}
}
