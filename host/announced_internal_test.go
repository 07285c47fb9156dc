package host

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/procxy/procxy/rpc"
)

// TestAnnounce: every method and event of $init is announced, sorted by
// id, with the child's timeouts and, for entries that cannot be used, why;
// a declared method keeps its own timeout.
func TestAnnounce(t *testing.T) {
	cfg := testConfig(t, []Method{{Name: "enqueue", Kind: rpc.KindAck, Timeout: time.Second}}, nil)
	raw := `{"pipe":"/p","schema":{"methods":{` +
		`"slow":{"id":3,"response":"result","timeout":1500},` +
		`"enqueue":{"id":2,"response":"ack"},` +
		`"zero":{"id":0,"response":"result"},` +
		`"odd":{"id":4,"response":"maybe"},` +
		`"gen":{"id":1,"response":"stream","timeout":99}},` +
		`"events":{"b":{"id":2},"a":{"id":1},"bad":{"id":"x"}}}}`
	s, err := parseInit(cfg, json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := InitSchema{
		Methods: []AnnouncedMethod{
			{Name: "zero", Problem: "announced id 0, want 1…65533"},
			{Name: "gen", ID: 1, Kind: rpc.KindStream},
			{Name: "enqueue", ID: 2, Kind: rpc.KindAck},
			{Name: "slow", ID: 3, Timeout: 1500 * time.Millisecond},
			{Name: "odd", ID: 4, Problem: `announced response "maybe", want "result", "ack", "stream" or "none"`},
		},
		Events: []AnnouncedEvent{{Name: "bad", Problem: `announced id "x", want 1…65533`}, {Name: "a", ID: 1}, {Name: "b", ID: 2}},
	}
	if got := s.announced.schema; !reflect.DeepEqual(got, want) {
		t.Errorf("schema =\n%+v\nwant\n%+v", got, want)
	}
	timeouts := map[string]time.Duration{}
	for name, md := range s.announced.methods {
		timeouts[name] = md.Timeout
	}
	if want := map[string]time.Duration{"gen": 0, "enqueue": time.Second, "slow": 1500 * time.Millisecond}; !reflect.DeepEqual(timeouts, want) {
		t.Errorf("callable methods' timeouts = %v, want %v", timeouts, want)
	}
}
