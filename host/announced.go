package host

import (
	"context"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
)

// InitSchema is what a child announced in its $init line: every method and
// event it has, whether or not the parent's Config declares them. Tools
// that learn a worker's methods at run time (the procxy CLI) read it with
// [Module.InitSchema] and call any announced method with [Module.Invoke]
// and [Module.InvokeStream]. Procwire announces no codecs: the caller must
// know them.
type InitSchema struct {
	Methods []AnnouncedMethod // sorted by ID, then name
	Events  []AnnouncedEvent  // sorted by ID, then name
}

// AnnouncedMethod is one method of a child's $init.
type AnnouncedMethod struct {
	Name string
	ID   uint16
	Kind rpc.Kind
	// Timeout is the child's own timeout for the method, in effect for
	// result and ack calls unless the Config declares the method with one;
	// zero when it announced none (then Config.CallTimeout applies).
	Timeout time.Duration
	// Problem, when not empty, says why the method cannot be called: an id
	// outside 1…65533 or an unknown response kind, as announced.
	Problem string
}

// AnnouncedEvent is one event of a child's $init.
type AnnouncedEvent struct {
	Name    string
	ID      uint16
	Problem string // why the event cannot be received, when not empty
}

// announced is a child's whole $init schema, resolved once per spawn.
type announced struct {
	schema  InitSchema
	methods map[string]rpc.Method // callable methods with raw codecs and their resolved timeouts
}

// announce resolves every method and event of a $init schema. Declared
// methods keep their resolved timeout; the others get the child's, else
// def (Config.CallTimeout).
func announce(cfg *Config, methods map[string]initMethod, events map[string]initEvent) *announced {
	a := &announced{methods: make(map[string]rpc.Method, len(methods))}
	declared := map[string]*Method{}
	for i := range cfg.Methods {
		declared[cfg.Methods[i].Name] = &cfg.Methods[i]
	}
	for name, cm := range methods {
		am := AnnouncedMethod{Name: name}
		id, idOK := validID(cm.ID)
		var resp string
		json.Unmarshal(cm.Response, &resp)
		kind, kindOK := parseKind(resp)
		switch {
		case !idOK:
			am.Problem = fmt.Sprintf("announced id %s, want 1…65533", cm.ID)
		case !kindOK:
			am.Problem = fmt.Sprintf("announced response %s, want \"result\", \"ack\", \"stream\" or \"none\"", cm.Response)
		}
		am.ID, am.Kind = id, kind
		if t := methodTimeout(&Method{Kind: kind}, cm.Timeout, 0); t > 0 {
			am.Timeout = t
		}
		a.schema.Methods = append(a.schema.Methods, am)
		if am.Problem != "" {
			continue
		}
		md := declared[name]
		if md == nil || md.Kind != kind {
			md = &Method{Kind: kind}
		}
		a.methods[name] = rpc.Method{ID: id, Kind: kind, Request: codec.Raw, Response: codec.Raw, Name: name,
			Timeout: methodTimeout(md, cm.Timeout, cfg.CallTimeout)}
	}
	for name, ce := range events {
		ae := AnnouncedEvent{Name: name}
		id, ok := validID(ce.ID)
		if !ok {
			ae.Problem = fmt.Sprintf("announced id %s, want 1…65533", ce.ID)
		}
		ae.ID = id
		a.schema.Events = append(a.schema.Events, ae)
	}
	slices.SortFunc(a.schema.Methods, func(x, y AnnouncedMethod) int {
		return cmpIDName(x.ID, y.ID, x.Name, y.Name)
	})
	slices.SortFunc(a.schema.Events, func(x, y AnnouncedEvent) int {
		return cmpIDName(x.ID, y.ID, x.Name, y.Name)
	})
	return a
}

func cmpIDName(a, b uint16, an, bn string) int {
	if a != b {
		return int(a) - int(b)
	}
	switch {
	case an < bn:
		return -1
	case an > bn:
		return 1
	}
	return 0
}

func parseKind(s string) (rpc.Kind, bool) {
	for _, k := range []rpc.Kind{rpc.KindResult, rpc.KindAck, rpc.KindStream, rpc.KindNone} {
		if k.String() == s {
			return k, true
		}
	}
	return rpc.KindResult, false
}

// InitSchema returns what the ready child announced in its $init. It
// fails with an error matching ErrNotReady when no child is ready.
func (m *Module) InitSchema() (InitSchema, error) {
	s, err := m.ready()
	if err != nil {
		return InitSchema{}, err
	}
	sc := s.sch.announced.schema
	return InitSchema{Methods: slices.Clone(sc.Methods), Events: slices.Clone(sc.Events)}, nil
}

// ready returns the ready session.
func (m *Module) ready() (*session, error) {
	m.mu.Lock()
	s, st, last := m.sess, m.state, m.err
	m.mu.Unlock()
	if st != StateReady || s == nil {
		return nil, notReady(m.cfg.Name, st, last)
	}
	return s, nil
}

// invokeRoute finds the ready session and an announced method of one of kinds.
func (m *Module) invokeRoute(method, op string, kinds ...rpc.Kind) (*session, rpc.Method, error) {
	s, err := m.ready()
	if err != nil {
		return nil, rpc.Method{}, err
	}
	md, ok := s.sch.announced.methods[method]
	if !ok {
		return nil, rpc.Method{}, fmt.Errorf("%w: the child of module %q announced no method %q (%s)", ErrUnknownMethod, m.cfg.Name, method, op)
	}
	if !slices.Contains(kinds, md.Kind) {
		use := "Invoke"
		if md.Kind == rpc.KindStream {
			use = "InvokeStream"
		}
		return nil, rpc.Method{}, fmt.Errorf("%w: %s %q: module %q announced a %v method; use %s",
			ErrWrongKind, op, method, m.cfg.Name, md.Kind, use)
	}
	return s, md, nil
}

// Invoke calls a result, ack or none method that the ready child
// announced in its $init, declared in the Config or not, with a payload
// already encoded in the method's request codec, and returns the answer's
// payload undecoded (nil for an ack without data, and for a none method,
// where Invoke returns once the request is written). The returned slice is
// the caller's.
//
// Errors, aborts, timeouts and Config.Recycle are those of [Call]: the
// timeout is the declared method's, else the child's, else
// Config.CallTimeout.
func (m *Module) Invoke(ctx context.Context, method string, payload []byte) ([]byte, error) {
	s, md, err := m.invokeRoute(method, "Invoke", rpc.KindResult, rpc.KindAck, rpc.KindNone)
	if err != nil {
		return nil, err
	}
	if md.Kind == rpc.KindNone {
		return nil, s.wrap(ctx, s.conn.Send(ctx, md, payload))
	}
	var out []byte
	if err := s.call(ctx, method, md, payload, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// InvokeStream calls a stream method that the ready child announced, like
// [Stream], with a payload already encoded in the method's request codec,
// and yields each chunk's payload undecoded; each slice is the caller's.
func (m *Module) InvokeStream(ctx context.Context, method string, payload []byte) iter.Seq2[[]byte, error] {
	return func(yield func([]byte, error) bool) {
		s, md, err := m.invokeRoute(method, "InvokeStream", rpc.KindStream)
		if err != nil {
			yield(nil, err)
			return
		}
		stream(ctx, s, md, payload, yield)
	}
}

// OnEventPayload is [OnEvent] without decoding: fn gets each payload of
// the event as the child sent it, in a slice that is fn's to keep.
func OnEventPayload(m *Module, event string, fn func(payload []byte)) (remove func()) {
	sub := &subscriber{deliver: func(p []byte) error {
		fn(slices.Clone(p))
		return nil
	}}
	m.mu.Lock()
	m.subs[event] = append(slices.Clip(m.subs[event]), sub)
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		m.subs[event] = slices.DeleteFunc(slices.Clone(m.subs[event]), func(x *subscriber) bool { return x == sub })
	}
}
