package host

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/procxy/procxy/rpc"
)

// initLine is the $init params a @procwire/client 1.3.1 child printed
// (protocol §11.5), with the path shortened.
const initLine = `{"pipe":"/run/user/1000/procwire-8969-bb81.sock","schema":{"methods":{"echo":{"id":1,"response":"result"},"generate":{"id":2,"response":"stream"},"enqueue":{"id":3,"response":"ack"},"log":{"id":4,"response":"none"},"blob":{"id":5,"response":"result"}},"events":{"progress":{"id":1},"status":{"id":2}}},"version":"1.0.0"}`

func testConfig(t *testing.T, methods []Method, events []Event) *Config {
	t.Helper()
	cfg, err := resolve(Config{Name: "v", Executable: "x", Methods: methods, Events: events})
	if err != nil {
		t.Fatal(err)
	}
	return &cfg
}

func TestParseInit(t *testing.T) {
	cfg := testConfig(t, []Method{
		{Name: "echo"},
		{Name: "generate", Kind: rpc.KindStream},
		{Name: "enqueue", Kind: rpc.KindAck, Timeout: time.Second},
		{Name: "log", Kind: rpc.KindNone},
	}, []Event{{Name: "status"}})
	s, err := parseInit(cfg, json.RawMessage(initLine))
	if err != nil {
		t.Fatal(err)
	}
	if s.pipe != "/run/user/1000/procwire-8969-bb81.sock" {
		t.Errorf("pipe = %q", s.pipe)
	}
	ids := map[string]uint16{}
	timeouts := map[string]time.Duration{}
	for name, r := range s.methods {
		ids[name], timeouts[name] = r.id, r.timeout
	}
	if want := map[string]uint16{"echo": 1, "generate": 2, "enqueue": 3, "log": 4}; !reflect.DeepEqual(ids, want) {
		t.Errorf("ids = %v, want %v (blob is the child's and unused)", ids, want)
	}
	if want := map[string]time.Duration{"echo": DefaultCallTimeout, "generate": 0, "enqueue": time.Second, "log": 0}; !reflect.DeepEqual(timeouts, want) {
		t.Errorf("timeouts = %v, want %v", timeouts, want)
	}
	if want := map[uint16]string{1: "progress", 2: "status"}; !reflect.DeepEqual(s.events, want) {
		t.Errorf("events = %v, want %v (every announced event)", s.events, want)
	}
}

func TestParseInitMalformed(t *testing.T) {
	cfg := testConfig(t, []Method{{Name: "echo"}}, nil)
	for _, raw := range []string{
		``, `null`, `[]`, `"x"`,
		`{"schema":{"methods":{},"events":{}}}`,
		`{"pipe":42,"schema":{"methods":{},"events":{}}}`,
		`{"pipe":"","schema":{"methods":{},"events":{}}}`,
		`{"pipe":"/p"}`,
		`{"pipe":"/p","schema":null}`,
		`{"pipe":"/p","schema":{"methods":{}}}`,
		`{"pipe":"/p","schema":{"events":{}}}`,
		`{"pipe":"/p","schema":{"methods":[],"events":{}}}`,
		`{"pipe":"/p","schema":{"methods":{"echo":7},"events":{}}}`,
	} {
		if _, err := parseInit(cfg, json.RawMessage(raw)); !errors.Is(err, ErrBadInit) {
			t.Errorf("parseInit(%s): got %v, want ErrBadInit", raw, err)
		}
	}
}

func TestParseInitDiffs(t *testing.T) {
	cfg := testConfig(t, []Method{{Name: "a"}, {Name: "b", Kind: rpc.KindAck}, {Name: "c"}, {Name: "d"}, {Name: "e"}},
		[]Event{{Name: "x"}, {Name: "y"}})
	raw := `{"pipe":"/p","schema":{"methods":{"a":{"id":1,"response":"result"},"b":{"id":2,"response":"result"},` +
		`"d":{"id":0,"response":"result"},"e":{"id":4,"response":7}},"events":{"x":{"id":65534}}}}`
	_, err := parseInit(cfg, json.RawMessage(raw))
	var se *SchemaError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want *SchemaError", err)
	}
	want := []SchemaDiff{
		{What: "method", Name: "b", Parent: "ack", Child: "result"},
		{What: "method", Name: "c", Parent: "result"},
		{What: "method", Name: "d", Child: "announced id 0, want 1…65533"},
		{What: "method", Name: "e", Parent: "result", Child: "7"},
		{What: "event", Name: "x", Child: "announced id 65534, want 1…65533"},
		{What: "event", Name: "y"},
	}
	if !reflect.DeepEqual(se.Diffs, want) {
		t.Errorf("diffs:\n got %+v\nwant %+v", se.Diffs, want)
	}
	wantMsg := `host: module "v": $init schema does not match the config: ` +
		`method "b" response type mismatch (parent declared "ack", child declared "result"); ` +
		`child did not register expected method "c"; method "d": announced id 0, want 1…65533; ` +
		`method "e" response type mismatch (parent declared "result", child declared "7"); ` +
		`event "x": announced id 65534, want 1…65533; child did not register expected event "y"`
	if err.Error() != wantMsg {
		t.Errorf("message:\n got %s\nwant %s", err, wantMsg)
	}
}

// TestMethodTimeout checks the precedence parent method → child schema →
// module default (§9.1, §13.5).
func TestMethodTimeout(t *testing.T) {
	def := 30 * time.Second
	tests := []struct {
		name   string
		method Method
		child  string
		want   time.Duration
	}{
		{"default", Method{}, ``, def},
		{"child schema", Method{}, `150`, 150 * time.Millisecond},
		{"child fraction", Method{}, `0.5`, 500 * time.Microsecond},
		{"child zero disables", Method{}, `0`, 0},
		{"child null", Method{}, `null`, def},
		{"child not a number", Method{}, `"150"`, def},
		{"method wins", Method{Timeout: 400 * time.Millisecond}, `150`, 400 * time.Millisecond},
		{"method disables", Method{Timeout: -1}, `150`, 0},
		{"ack", Method{Kind: rpc.KindAck}, `150`, 150 * time.Millisecond},
		{"stream has none", Method{Kind: rpc.KindStream, Timeout: time.Second}, `150`, 0},
		{"none has none", Method{Kind: rpc.KindNone}, ``, 0},
	}
	for _, tt := range tests {
		if got := methodTimeout(&tt.method, json.RawMessage(tt.child), def); got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestParseControl(t *testing.T) {
	tests := []struct {
		line   string
		ok     bool
		method string
	}{
		{`{"jsonrpc":"2.0","method":"$init","params":{}}`, true, "$init"},
		{`{"jsonrpc":"2.0","method":"$error","params":{"message":"m"}}`, true, "$error"},
		{`{"jsonrpc":"2.0","method":"$pong"}`, true, "$pong"},
		{`{"method":"$pong","id":5}`, true, "$pong"},
		{` {"jsonrpc":"2.0","method":"$pong"}`, false, ""}, // must start with '{'
		{`{"jsonrpc":"2.0","method":"$ping"}`, false, ""},  // not a child's message
		{`{"jsonrpc":"2.0","method":"log"}`, false, ""},
		{`{not json`, false, ""},
		{`plain`, false, ""},
		{`{"method":42}`, false, ""},
	}
	for _, tt := range tests {
		c, ok := parseControl([]byte(tt.line))
		if ok != tt.ok || (ok && c.Method != tt.method) {
			t.Errorf("parseControl(%s) = %q, %v; want %q, %v", tt.line, c.Method, ok, tt.method, tt.ok)
		}
	}
}
