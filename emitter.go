package procxy

import (
	"context"
	"fmt"
	"sync"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/procxy/procxy/rpc"
)

// Emitter sends events from an object in a child to the parent's listeners
// (registered with On). Embed it in a registered type:
//
//	type Job struct{ procxy.Emitter }
//	func (j *Job) Run() { j.Emit("progress", 50) }
//
// The zero Emitter is ready; it is attached when the child constructs the
// object, so events emitted by the constructor itself are not delivered.
// Emit is safe for concurrent use.
type Emitter struct {
	mu   sync.Mutex
	conn *rpc.Conn // guarded by mu
}

func (e *Emitter) procxyEmitter() *Emitter { return e }

func (e *Emitter) attach(c *rpc.Conn) {
	e.mu.Lock()
	e.conn = c
	e.mu.Unlock()
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
// with ErrNotAttached when the object does not live in a procxy child.
func (e *Emitter) Emit(name string, v any) error {
	e.mu.Lock()
	c := e.conn
	e.mu.Unlock()
	if c == nil {
		return ErrNotAttached
	}
	return c.Send(context.Background(), rpc.Method{ID: idEvent, Kind: rpc.KindNone, Name: name}, event{Name: name, Value: v})
}

// listeners holds a proxy's event listeners by name, in registration order.
type listeners struct {
	mu     sync.Mutex
	byName map[string][]func(msgpack.RawMessage) // guarded by mu
	log    func(msg string, args ...any)
}

func (l *listeners) add(name string, fn func(msgpack.RawMessage)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byName == nil {
		l.byName = make(map[string][]func(msgpack.RawMessage))
	}
	l.byName[name] = append(l.byName[name], fn)
}

// dispatch runs on the connection's single event goroutine, so listeners
// see events in the order they were emitted.
func (l *listeners) dispatch(_ context.Context, ev eventIn) error {
	l.mu.Lock()
	fns := l.byName[ev.Name]
	l.mu.Unlock()
	for _, fn := range fns {
		fn(ev.Value)
	}
	return nil
}

// On registers fn to receive the events named name that the proxied object
// emits, decoded as T. Every listener is called, in registration order, one
// event at a time; a slow listener delays later events, not calls. An event
// that does not decode as T is logged and skipped for this listener.
func On[T, P any](p *Proxy[P], name string, fn func(T)) {
	p.events.add(name, func(raw msgpack.RawMessage) {
		var v T
		if err := msgpackCodec.Unmarshal(raw, &v); err != nil {
			p.events.log("procxy: event does not decode", "event", name, "type", fmt.Sprintf("%T", v), "err", err)
			return
		}
		fn(v)
	})
}
