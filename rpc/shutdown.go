package rpc

import (
	"context"
	"fmt"
	"time"

	"github.com/procxy/procxy/rpc/wire"
)

// ErrShuttingDown is the error of a call that the peer refused because it
// is shutting down (Shutdown): the handler never ran, so the call is safe
// to retry elsewhere. Test with errors.Is; it matches the *RemoteError the
// call returns by its Code.
var ErrShuttingDown = &RemoteError{Name: "ShutdownError", Code: codeShuttingDown,
	Message: "rpc: the peer is shutting down; the request was not handled"}

const codeShuttingDown = "shutting_down"

// errShutdown is what a new local call gets during Shutdown.
var errShutdown = fmt.Errorf("%w: %w (shutting down)", ErrNotSent, ErrClosed)

// Shutdown ends the connection gracefully. New calls, streams and sends
// fail at once with an error wrapping ErrNotSent and ErrClosed, and
// requests from the peer that expect an answer are refused with
// ErrShuttingDown; fire-and-forget requests and events are still served.
// Calls and streams in flight in both directions go on until they end or
// ctx is done, whichever comes first; then the connection closes as with
// Close.
//
// When everything in flight ended, Shutdown flushes the last replies,
// closes the connection, waits for its goroutines like Close and returns
// nil. When ctx ends first, it closes the connection at once (pending
// calls fail with an error wrapping ErrClosed and ctx's cause, handlers
// see their context cancelled) and returns ctx's error without waiting for
// handlers that ignore their context; a later Close waits for them. So
// Shutdown never blocks much longer than ctx allows. The same holds when
// the connection has already ended, for example because the peer went
// away: Shutdown then waits for the cancelled handlers within ctx.
//
// Like net/http's Server.Shutdown, it checks for the end of the work in
// flight with a short, growing poll interval. Calling it again, or after
// Close, is allowed.
func (c *Conn) Shutdown(ctx context.Context) error {
	c.draining.Store(true)
	interval := time.Millisecond
	t := time.NewTimer(interval)
	defer t.Stop()
	for !c.idle() {
		select {
		case <-ctx.Done():
			c.fail(fmt.Errorf("shutdown gave up: %w", context.Cause(ctx)))
			return ctx.Err()
		case <-c.done:
			// Ended meanwhile (peer gone, or Close): handlers were
			// cancelled; wait for them as Close does, within ctx.
			return c.waitGoroutines(ctx)
		case <-t.C:
			interval = min(2*interval, 50*time.Millisecond)
			t.Reset(interval)
		}
	}
	c.w.Flush()
	return c.CloseContext(ctx)
}

// CloseContext ends the connection as Close does — pending calls fail,
// running handlers see their context cancelled — but waits for the
// connection's goroutines only until ctx ends, and then returns ctx's
// error: a handler that ignores its cancelled context does not hold up
// its owner, and is left to return on its own.
func (c *Conn) CloseContext(ctx context.Context) error {
	c.fail(nil)
	return c.waitGoroutines(ctx)
}

// waitGoroutines waits for the goroutines of the ended connection, as
// Close does, or until ctx ends.
func (c *Conn) waitGoroutines(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// idle reports whether no call, stream or handler is in flight.
func (c *Conn) idle() bool {
	c.mu.Lock()
	busy := len(c.pending) + len(c.serving) + len(c.anon)
	c.mu.Unlock()
	return busy == 0 && c.answering.Load() == 0 && len(c.events) == 0
}

// refuse answers a request that arrived during Shutdown with
// ErrShuttingDown. It runs on the goroutine holding the read turn.
func (c *Conn) refuse(f wire.Frame) {
	if c.lent != nil { // the request was read into a reused buffer
		c.large.put(c.lent)
		c.lent = nil
	}
	flags := wire.FlagResponse | wire.FlagError
	if h := c.opts.Handlers.lookup(f.Method); h != nil && h.kind == KindStream {
		flags |= wire.FlagStream
	}
	c.wg.Go(func() { // never write from the reader goroutine
		b := getBuf()
		*b = appendError((*b)[:0], ErrShuttingDown)
		c.write(f.Method, flags, f.ID, *b)
		putBuf(b)
	})
}
