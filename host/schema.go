package host

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"github.com/procxy/procxy/rpc"
)

// initParams is the params member of the child's $init line (§4.3).
type initParams struct {
	Pipe   json.RawMessage `json:"pipe"`
	Schema json.RawMessage `json:"schema"`
	// Procxy is what a procxy worker adds: {"metadata": true} when it
	// takes request metadata (docs/PROTOCOL.md). Procwire parents ignore
	// it; anything else in it is ignored here too.
	Procxy json.RawMessage `json:"procxy"`
}

type initSchema struct {
	Methods json.RawMessage `json:"methods"`
	Events  json.RawMessage `json:"events"`
}

// Members are kept raw: Procwire does not check their types, and a bad
// member should be reported as a difference, not as an unreadable $init.
type initMethod struct {
	ID       json.RawMessage `json:"id"`
	Response json.RawMessage `json:"response"`
	Timeout  json.RawMessage `json:"timeout"`
}

type initEvent struct {
	ID json.RawMessage `json:"id"`
}

// route is how one declared method is called on the current child.
type route struct {
	id      uint16
	def     *Method
	timeout time.Duration // resolved: method → child schema → module default; 0 is none
}

// schema is the child's $init, resolved against the module's Config.
type schema struct {
	pipe     string
	metadata bool              // the child takes request metadata (trace context)
	methods  map[string]route  // declared methods, by name
	events   map[uint16]string // every announced event with a valid id
	// announced is everything the child announced, for InitSchema and Invoke.
	announced *announced
}

// parseInit validates a $init line's params against cfg (§4.5): first its
// structure (ErrBadInit), then that every declared method exists with the
// declared kind and every declared event exists (*SchemaError, listing
// every difference).
func parseInit(cfg *Config, raw json.RawMessage) (*schema, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: module %q: %s", ErrBadInit, cfg.Name, why)
	}
	var p initParams
	var sc initSchema
	if json.Unmarshal(raw, &p) != nil || !isObject(raw) {
		return nil, bad("params is not an object")
	}
	s := &schema{methods: map[string]route{}, events: map[uint16]string{}}
	if json.Unmarshal(p.Pipe, &s.pipe) != nil || s.pipe == "" {
		return nil, bad("pipe is not a non-empty string")
	}
	var ext struct {
		Metadata bool `json:"metadata"`
	}
	if isObject(p.Procxy) && json.Unmarshal(p.Procxy, &ext) == nil {
		s.metadata = ext.Metadata
	}
	if !isObject(p.Schema) || json.Unmarshal(p.Schema, &sc) != nil {
		return nil, bad("schema is not an object")
	}
	var methods map[string]initMethod
	var events map[string]initEvent
	if !isObject(sc.Methods) || json.Unmarshal(sc.Methods, &methods) != nil {
		return nil, bad("schema.methods is not an object of {id, response}")
	}
	if !isObject(sc.Events) || json.Unmarshal(sc.Events, &events) != nil {
		return nil, bad("schema.events is not an object of {id}")
	}

	var diffs []SchemaDiff
	for i := range cfg.Methods {
		md := &cfg.Methods[i]
		cm, ok := methods[md.Name]
		if !ok {
			diffs = append(diffs, SchemaDiff{What: "method", Name: md.Name, Parent: md.Kind.String()})
			continue
		}
		var resp string
		if json.Unmarshal(cm.Response, &resp) != nil {
			resp = string(cm.Response) // not a string: shown as JSON
		}
		if resp != md.Kind.String() {
			diffs = append(diffs, SchemaDiff{What: "method", Name: md.Name, Parent: md.Kind.String(), Child: resp})
			continue
		}
		id, ok := validID(cm.ID)
		if !ok {
			diffs = append(diffs, SchemaDiff{What: "method", Name: md.Name, Child: fmt.Sprintf("announced id %s, want 1…65533", cm.ID)})
			continue
		}
		s.methods[md.Name] = route{id: id, def: md, timeout: methodTimeout(md, cm.Timeout, cfg.CallTimeout)}
	}
	for _, ev := range cfg.Events {
		ce, ok := events[ev.Name]
		if !ok {
			diffs = append(diffs, SchemaDiff{What: "event", Name: ev.Name})
			continue
		}
		if _, ok := validID(ce.ID); !ok {
			diffs = append(diffs, SchemaDiff{What: "event", Name: ev.Name, Child: fmt.Sprintf("announced id %s, want 1…65533", ce.ID)})
		}
	}
	if len(diffs) > 0 {
		return nil, &SchemaError{Module: cfg.Name, Diffs: diffs}
	}
	for name, ce := range events {
		if id, ok := validID(ce.ID); ok {
			s.events[id] = name
		}
	}
	s.announced = announce(cfg, methods, events)
	return s, nil
}

func isObject(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && raw[0] == '{'
}

// validID parses a method or event id; 0, 0xFFFE and 0xFFFF are reserved.
func validID(raw json.RawMessage) (uint16, bool) {
	var v float64
	if json.Unmarshal(raw, &v) != nil || v < 1 || v > 0xFFFD || v != math.Trunc(v) {
		return 0, false
	}
	return uint16(v), true
}

// methodTimeout applies Procwire's precedence (§9.1, §13.5): the parent's
// per-method timeout, else the child's schema timeout, else the module
// default. A resolved value ≤ 0 means none. Only result and ack calls have one.
func methodTimeout(md *Method, child json.RawMessage, def time.Duration) time.Duration {
	if md.Kind != rpc.KindResult && md.Kind != rpc.KindAck {
		return 0
	}
	switch {
	case md.Timeout > 0:
		return md.Timeout
	case md.Timeout < 0:
		return 0
	case len(child) > 0 && string(child) != "null":
		var ms float64
		if json.Unmarshal(child, &ms) != nil {
			return def // Procwire does not check the type; ignore a non-number
		}
		if ms <= 0 {
			return 0
		}
		return time.Duration(min(ms, float64(math.MaxInt64/int64(time.Millisecond))) * float64(time.Millisecond))
	}
	return def
}
