package procxy

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/procxy/procxy/rpc"
)

// Emitter sends events from an object in a child to the parent's listeners
// (registered with OnEvent). Embed it in a registered type:
//
//	type Job struct{ procxy.Emitter }
//	func (j *Job) Run() { j.Emit("progress", 50) }
//
// The zero Emitter is ready; it is attached when the child constructs the
// object, so events emitted by the constructor itself are not delivered.
// Emit is safe for concurrent use.
type Emitter struct {
	mu   sync.Mutex
	send func(name string, v any) error // guarded by mu; nil until attached
}

func (e *Emitter) procxyEmitter() *Emitter { return e }

// attach makes Emit send through send: to the parent over the child's
// connection, or to a message bus in a worker (Serve).
func (e *Emitter) attach(send func(name string, v any) error) {
	e.mu.Lock()
	e.send = send
	e.mu.Unlock()
}

// connSender sends events over a child's connection to its parent.
func connSender(c *rpc.Conn) func(name string, v any) error {
	return func(name string, v any) error {
		return c.Send(context.Background(), rpc.Method{ID: idEvent, Kind: rpc.KindNone, Name: name}, event{Name: name, Value: v})
	}
}

// event is the payload of an event frame.
type event struct {
	Name  string `msgpack:"name"`
	Value any    `msgpack:"value"`
}

type eventIn struct {
	Name  string             `msgpack:"name"`
	Value msgpack.RawMessage `msgpack:"value"`
}

// Emit sends v to the parent's listeners for name, in order with the other
// events of this object. It returns once the event is written; it fails
// with ErrNotAttached when the object does not live in a procxy child or
// worker. In a worker (Serve) the event goes to the listeners of every
// Remote of the type on the bus.
func (e *Emitter) Emit(name string, v any) error {
	e.mu.Lock()
	send := e.send
	e.mu.Unlock()
	if send == nil {
		return ErrNotAttached
	}
	return send(name, v)
}

// listeners holds a target's event listeners by name, in registration
// order. A pool member's listeners forward to the pool's.
type listeners struct {
	mu      sync.Mutex
	byName  map[string][]*listener // guarded by mu
	log     func(msg string, args ...any)
	forward *listeners // also dispatch to these (a Pool's); may be nil
}

// listener is one OnEvent: fn decodes the value and calls the user's func, or
// fails when the value does not decode.
type listener struct {
	fn func(msgpack.RawMessage) error
}

// add registers fn for name and returns a func that removes it.
func (l *listeners) add(name string, fn func(msgpack.RawMessage) error) (remove func()) {
	ln := &listener{fn}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byName == nil {
		l.byName = make(map[string][]*listener)
	}
	l.byName[name] = append(l.byName[name], ln)
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.byName[name] = slices.DeleteFunc(slices.Clone(l.byName[name]), func(x *listener) bool { return x == ln })
	}
}

// dispatch runs on the connection's single event goroutine, so listeners
// see events in the order they were emitted.
func (l *listeners) dispatch(_ context.Context, ev eventIn) error {
	l.mu.Lock()
	lns := l.byName[ev.Name]
	l.mu.Unlock()
	for _, ln := range lns {
		if err := ln.fn(ev.Value); err != nil && l.log != nil {
			l.log("procxy: event does not decode", "event", ev.Name, "err", err)
		}
	}
	if l.forward != nil {
		return l.forward.dispatch(context.Background(), ev)
	}
	return nil
}

// On registers fn to receive the events named name that the object emits,
// decoded as T, and returns a func that removes it. t is a *Proxy, a *Pool
// (events of every member), a *Remote (events of every worker) or a stub
// written by procxy gen (the events of its Target). Every
// listener is called, in registration order, one event at a time. As with
// a local call, the events a method emitted before returning have reached
// every listener (of a Proxy or Pool) when its call returns, so a slow
// listener delays that call; a listener may itself call the proxy. An
// event that does not decode as T is logged and skipped for this listener.
func OnEvent[T, P any](t Target[P], name string, fn func(T)) (remove func()) {
	return resolve(t).listen(name, func(raw msgpack.RawMessage) error {
		var v T
		if err := msgpackCodec.Unmarshal(raw, &v); err != nil {
			return fmt.Errorf("into %T: %w", v, err)
		}
		fn(v)
		return nil
	})
}

func (p *Proxy[T]) listen(name string, fn func(msgpack.RawMessage) error) func() {
	return p.events.add(name, fn)
}
