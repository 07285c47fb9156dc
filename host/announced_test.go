package host_test

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/host/internal/testworker"
	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
)

// TestInvoke: a module that declares no methods learns them from the
// child's $init and calls each kind with encoded payloads, against both
// interop workers; OnEventPayload gets events undecoded.
func TestInvoke(t *testing.T) {
	for _, kind := range workerKinds {
		w := kind(t)
		t.Run(w.name, func(t *testing.T) {
			cfg := config(w, newLogSink())
			cfg.Methods, cfg.Events = nil, nil
			m, _ := spawn(t, cfg)
			ctx := t.Context()

			sc, err := m.InitSchema()
			if err != nil {
				t.Fatal(err)
			}
			var got []host.AnnouncedMethod
			for _, am := range sc.Methods {
				got = append(got, host.AnnouncedMethod{Name: am.Name, ID: am.ID, Kind: am.Kind})
			}
			want := []host.AnnouncedMethod{
				{Name: "echo", ID: 1}, {Name: "echoRaw", ID: 2}, {Name: "fail", ID: 3},
				{Name: "count", ID: 4, Kind: rpc.KindStream}, {Name: "slow", ID: 5},
				{Name: "accept", ID: 6, Kind: rpc.KindAck}, {Name: "notify", ID: 7, Kind: rpc.KindNone},
				{Name: "getenv", ID: 8}, {Name: "crash", ID: 9, Kind: rpc.KindNone},
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("InitSchema().Methods = %+v\nwant %+v", got, want)
			}
			if want := []host.AnnouncedEvent{{Name: "progress", ID: 1}, {Name: "notified", ID: 2}}; !reflect.DeepEqual(sc.Events, want) {
				t.Errorf("InitSchema().Events = %+v, want %+v", sc.Events, want)
			}

			enc := func(v any) []byte {
				b, err := codec.Msgpack.Append(nil, v)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			if out, err := m.Invoke(ctx, "echo", enc("hi")); err != nil || string(out) != string(enc("hi")) {
				t.Errorf("Invoke echo = %x, %v; want %x", out, err, enc("hi"))
			}
			if out, err := m.Invoke(ctx, "echoRaw", []byte{1, 2, 3}); err != nil || string(out) != "\x01\x02\x03" {
				t.Errorf("Invoke echoRaw = %x, %v", out, err)
			}
			if out, err := m.Invoke(ctx, "accept", enc(nil)); err != nil || string(out) != string(enc(map[string]bool{"accepted": true})) {
				t.Errorf("Invoke accept = %x, %v", out, err)
			}
			var re *rpc.RemoteError
			if _, err := m.Invoke(ctx, "fail", enc(map[string]string{"message": "no"})); !errors.As(err, &re) || re.Message != "no" {
				t.Errorf("Invoke fail: got %v, want a RemoteError %q", err, "no")
			}
			var chunks [][]byte
			for c, err := range m.InvokeStream(ctx, "count", enc(map[string]int{"n": 3})) {
				if err != nil {
					t.Fatal(err)
				}
				chunks = append(chunks, c)
			}
			if want := [][]byte{enc(map[string]int{"i": 0}), enc(map[string]int{"i": 1}), enc(map[string]int{"i": 2})}; !reflect.DeepEqual(chunks, want) {
				t.Errorf("InvokeStream count = %x, want %x", chunks, want)
			}

			events := make(chan []byte, 1)
			remove := host.OnEventPayload(m, "notified", func(p []byte) { events <- p })
			if out, err := m.Invoke(ctx, "notify", enc("ping")); err != nil || out != nil {
				t.Errorf("Invoke notify = %x, %v; want nil, nil", out, err)
			}
			if p := <-events; string(p) != string(enc("ping")) {
				t.Errorf("notified payload %x, want %x", p, enc("ping"))
			}
			remove()

			for _, tc := range []struct {
				method string
				want   error
			}{{"nope", host.ErrUnknownMethod}, {"count", host.ErrWrongKind}} {
				if _, err := m.Invoke(ctx, tc.method, enc(nil)); !errors.Is(err, tc.want) {
					t.Errorf("Invoke %s: got %v, want %v", tc.method, err, tc.want)
				}
			}
			for _, err := range m.InvokeStream(ctx, "echo", enc(nil)) {
				if !errors.Is(err, host.ErrWrongKind) {
					t.Errorf("InvokeStream echo: got %v, want ErrWrongKind", err)
				}
			}
		})
	}
}

// TestInvokeTimeout: the child's $init timeout bounds Invoke like Call.
func TestInvokeTimeout(t *testing.T) {
	cfg := config(testWorker(testworker.ModeSchemaTimeout), newLogSink())
	cfg.Methods = nil
	m, _ := spawn(t, cfg)
	sc, err := m.InitSchema()
	if err != nil {
		t.Fatal(err)
	}
	for _, am := range sc.Methods {
		if am.Name == "slow" && am.Timeout != 150*time.Millisecond {
			t.Errorf("slow's announced timeout %v, want 150ms", am.Timeout)
		}
	}
	in, _ := codec.Msgpack.Append(nil, map[string]int{"ms": 60_000})
	if _, err := m.Invoke(t.Context(), "slow", in); !errors.Is(err, host.ErrTimeout) {
		t.Errorf("Invoke slow: got %v, want ErrTimeout", err)
	}
}

// TestInitSchemaNotReady: no schema before the child is ready.
func TestInitSchemaNotReady(t *testing.T) {
	m, _ := newModule(t, config(testWorker(testworker.ModeOK), newLogSink()))
	if _, err := m.InitSchema(); !errors.Is(err, host.ErrNotReady) {
		t.Errorf("InitSchema before Spawn: got %v, want ErrNotReady", err)
	}
	if _, err := m.Invoke(t.Context(), "echo", nil); !errors.Is(err, host.ErrNotReady) {
		t.Errorf("Invoke before Spawn: got %v, want ErrNotReady", err)
	}
}
