package rpc

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Events before answers. A child's events (id-0 frames) are served in
// order by one dispatcher goroutine, apart from the calls. So that the
// events a method emitted before returning have reached their listeners
// when its call returns, the reader stamps every answer with the number
// of events read before it, and the caller waits, after its answer
// arrived, until the dispatcher has served that many. With no event
// pending (the common case) that is one atomic load and no handoff.
//
// A listener may call its own peer: the dispatcher's goroutine then waits
// for an answer stamped past the event it is serving. Instead of waiting
// for itself it serves the events before the answer in place — as a local
// emitter would call listeners from inside the method — so the events of
// the method the listener called reach their listeners before that call
// returns too. Events the dispatcher had already taken when a call was
// sent were emitted before the method ran: the call does not wait for
// them, so a listener that waits for a call made on another goroutine does
// not wait for itself. A listener's call to another connection does not
// wait for that connection's events: two listeners calling each other's
// peers would otherwise wait for each other.
type eventOrder struct {
	read    uint64        // events read; owned by the goroutine holding the read turn
	started atomic.Uint64 // events taken by the dispatcher; written by it alone
	depth   int           // events being served on the dispatcher's goroutine (nested by listeners' calls)
	done    atomic.Uint64 // events served, every one before it too: moves when depth returns to 0
	waiters atomic.Int32  // callers in wait
	gid     atomic.Int64  // the dispatcher's goroutine
	mu      sync.Mutex
	cond    sync.Cond // on mu: done moved or the connection ended
}

// dispatchers holds the goroutine ids of every connection's event
// dispatcher.
var dispatchers sync.Map

func (c *Conn) dispatchEvents() {
	id := goid()
	c.ev.gid.Store(id)
	dispatchers.Store(id, true)
	defer func() {
		dispatchers.Delete(id)
		c.ev.wake()
	}()
	for {
		select {
		case r := <-c.events:
			c.dispatchEvent(r)
		case <-c.done:
			return
		}
	}
}

// dispatchEvent serves one event and counts it; it runs on the
// dispatcher's goroutine.
func (c *Conn) dispatchEvent(r *request) {
	e := &c.ev
	e.started.Add(1)
	e.depth++
	if c.track(r) {
		c.serve(r, false)
	}
	if e.depth--; e.depth > 0 {
		return // a listener's call served it: the outer event is not done
	}
	e.done.Store(e.started.Load())
	if e.waiters.Load() > 0 {
		e.wake()
	}
}

func (e *eventOrder) wake() {
	e.mu.Lock()
	if e.cond.L == nil {
		e.cond.L = &e.mu
	}
	e.cond.Broadcast()
	e.mu.Unlock()
}

// awaitEvents returns once the events read from the connection before an
// answer (n of them) have been served, or the connection has ended. base
// is how many events the dispatcher had taken when the call was sent:
// those are not the called method's, and need not be waited for.
func (c *Conn) awaitEvents(n, base uint64) {
	if n <= base || c.ev.done.Load() >= n {
		return
	}
	id := goid()
	if id == c.ev.gid.Load() {
		// A listener calling its own peer: serve the events in place.
		for c.ev.started.Load() < n {
			select {
			case r := <-c.events:
				c.dispatchEvent(r)
			case <-c.done:
				return
			}
		}
		return
	}
	if _, ok := dispatchers.Load(id); ok {
		return // a listener of another connection (see eventOrder)
	}
	e := &c.ev
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cond.L == nil {
		e.cond.L = &e.mu
	}
	e.waiters.Add(1)
	defer e.waiters.Add(-1)
	for e.done.Load() < n {
		select {
		case <-c.done:
			return
		default:
		}
		e.cond.Wait()
	}
}

// goid returns the calling goroutine's id, from its stack header
// ("goroutine 18 [running]:"). It is only asked when an answer has to wait
// for events.
func goid() int64 {
	var buf [64]byte
	b := buf[:runtime.Stack(buf[:], false)]
	const prefix = "goroutine "
	if len(b) < len(prefix) {
		return -1
	}
	var id int64
	for _, ch := range b[len(prefix):] {
		if ch < '0' || ch > '9' {
			break
		}
		id = id*10 + int64(ch-'0')
	}
	return id
}
