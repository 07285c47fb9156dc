package host_test

import (
	"context"
	"errors"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/procxy/procxy/host"
)

func TestLines(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want []string
		cut  []bool
	}{
		{"a\nb\n", 16, []string{"a", "b"}, []bool{false, false}},
		{"a\r\nb\rc", 16, []string{"a", "b", "c"}, []bool{false, false, false}},
		{"\n\n\r\n", 16, nil, nil},
		{"no newline at the end", 64, []string{"no newline at the end"}, []bool{false}},
		{"0123456789\nab\n", 8, []string{"01234567", "ab"}, []bool{true, false}},
		{"01234567\n", 8, []string{"01234567"}, []bool{false}},
		{"x\r0123456789\n", 8, []string{"x", "01234567"}, []bool{false, true}},
	}
	for _, tt := range tests {
		got, cut, err := host.Lines(strings.NewReader(tt.in), tt.max)
		if err != io.EOF || !slices.Equal(got, tt.want) || !slices.Equal(cut, tt.cut) {
			t.Errorf("Lines(%q, %d) = %q %v, %v; want %q %v", tt.in, tt.max, got, cut, err, tt.want, tt.cut)
		}
	}
}

// TestLinesBounded: a 64 MiB line costs at most max bytes.
func TestLinesBounded(t *testing.T) {
	r := io.MultiReader(io.LimitReader(zeros{}, 64<<20), strings.NewReader("\nnext\n"))
	got, cut, err := host.Lines(r, 1<<10)
	if err != io.EOF || len(got) != 2 || len(got[0]) != 1<<10 || !cut[0] || got[1] != "next" {
		t.Fatalf("got %d lines (%v), %v", len(got), cut, err)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'z'
	}
	return len(p), nil
}

func TestBackoff(t *testing.T) {
	b := host.Backoff{Base: time.Second, Max: 30 * time.Second, Jitter: 0.2}
	var got []time.Duration
	for n := 1; n <= 7; n++ {
		got = append(got, host.BackoffDelay(b, n, 0.5)) // r = 0.5: no jitter
	}
	want := []time.Duration{1, 2, 4, 8, 16, 30, 30}
	for i := range want {
		want[i] *= time.Second
	}
	if !slices.Equal(got, want) {
		t.Errorf("delays %v, want %v", got, want)
	}
	if lo, hi := host.BackoffDelay(b, 3, 0), host.BackoffDelay(b, 3, 0.999999); lo != 3200*time.Millisecond || hi < 4799*time.Millisecond || hi > 4800*time.Millisecond {
		t.Errorf("jitter range for 4s = [%v, %v], want [3.2s, 4.8s)", lo, hi)
	}
	fixed := host.Backoff{Base: 200 * time.Millisecond, Max: 200 * time.Millisecond}
	if d := host.BackoffDelay(fixed, 5, 0.5); d != 200*time.Millisecond {
		t.Errorf("fixed delay %v, want 200ms", d)
	}
}

func TestRestartLimit(t *testing.T) {
	allow := host.NewLimiter(2, time.Minute)
	t0 := time.Unix(1000, 0)
	steps := []struct {
		at   time.Duration
		want bool
	}{{0, true}, {time.Second, true}, {2 * time.Second, false}, {59 * time.Second, false}, {60 * time.Second, true}, {61 * time.Second, true}, {62 * time.Second, false}}
	for _, s := range steps {
		if got := allow(t0.Add(s.at)); got != s.want {
			t.Errorf("restart at +%v: allowed %v, want %v", s.at, got, s.want)
		}
	}
	if unlimited := host.NewLimiter(-1, time.Minute); !unlimited(t0) || !unlimited(t0) {
		t.Error("a negative max must allow every restart")
	}
}

// TestHeartbeat checks §9.2 in virtual time: pings every interval while
// answered, never a second ping while one is outstanding, and detection at
// the first tick at or after the timeout.
func TestHeartbeat(t *testing.T) {
	tests := []struct {
		interval, timeout time.Duration
		answered          int           // pings answered before the child goes silent
		wantPings         int           // pings written in all
		wantAfter         time.Duration // detection time after the unanswered ping
	}{
		{50 * time.Millisecond, 500 * time.Millisecond, 5, 6, 500 * time.Millisecond},
		{100 * time.Millisecond, 250 * time.Millisecond, 3, 4, 300 * time.Millisecond}, // §13.13: ~302 ms observed
		{50 * time.Millisecond, 500 * time.Millisecond, 0, 1, 500 * time.Millisecond},
	}
	for _, tt := range tests {
		synctest.Test(t, func(t *testing.T) {
			start := time.Now()
			pongs := make(chan struct{}, 1)
			var pings []time.Duration
			ping := func() error {
				pings = append(pings, time.Since(start))
				if len(pings) <= tt.answered {
					pongs <- struct{}{}
				}
				return nil
			}
			err := host.RunHeartbeat(make(chan struct{}), tt.interval, tt.timeout, ping, pongs)
			if !errors.Is(err, host.ErrHeartbeat) {
				t.Fatalf("got %v, want ErrHeartbeat", err)
			}
			if len(pings) != tt.wantPings {
				t.Fatalf("pings at %v, want %d of them", pings, tt.wantPings)
			}
			for i, at := range pings {
				if at != time.Duration(i)*tt.interval {
					t.Errorf("ping %d at %v, want %v", i, at, time.Duration(i)*tt.interval)
				}
			}
			if after := time.Since(start) - pings[len(pings)-1]; after != tt.wantAfter {
				t.Errorf("detected %v after the unanswered ping, want %v", after, tt.wantAfter)
			}
		})
	}
	synctest.Test(t, func(t *testing.T) {
		stop := make(chan struct{})
		pongs := make(chan struct{}, 1)
		res := make(chan error)
		go func() {
			res <- host.RunHeartbeat(stop, time.Second, time.Hour, func() error { pongs <- struct{}{}; return nil }, pongs)
		}()
		time.Sleep(time.Minute) // virtual time: 60 answered pings
		close(stop)
		if err := <-res; err != nil {
			t.Errorf("stopped heartbeat returned %v", err)
		}
	})
}

// TestRetrySchedule: failed attempts are retried after 1 s, 2 s, 4 s
// (jitter off), then the spawn fails with a *SpawnError naming the last
// error; retries are reported as changes to StateStarting with the error.
func TestRetrySchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var changes []host.Change
		m, err := host.NewModule(host.Config{Name: "r", Executable: "unused",
			Policy:   host.Policy{Backoff: host.Backoff{Jitter: -1}},
			OnChange: func(c host.Change) { changes = append(changes, c) }})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var at []time.Duration
		boom := errors.New("boom")
		host.OnAttempt(m, func(context.Context) error {
			at = append(at, time.Since(start))
			return boom
		})
		err = m.Spawn(t.Context())
		var se *host.SpawnError
		if !errors.As(err, &se) || se.Attempts != 4 || !errors.Is(err, boom) {
			t.Fatalf("Spawn: got %v, want a *SpawnError after 4 attempts wrapping boom", err)
		}
		want := []time.Duration{0, time.Second, 3 * time.Second, 7 * time.Second}
		if !slices.Equal(at, want) {
			t.Errorf("attempts at %v, want %v", at, want)
		}
		synctest.Wait()
		var states []host.State
		for _, c := range changes {
			states = append(states, c.To)
			if c.To == host.StateStarting && c.From == host.StateStarting && !errors.Is(c.Err, boom) {
				t.Errorf("retry change %v: want the failed attempt's error", c)
			}
		}
		wantStates := []host.State{host.StateStarting, host.StateStarting, host.StateStarting, host.StateStarting, host.StateFailed}
		if !slices.Equal(states, wantStates) {
			t.Errorf("states %v, want %v", states, wantStates)
		}

		// Shutdown during the backoff stops the retries at once.
		attempts := 0
		host.OnAttempt(m, func(context.Context) error { attempts++; return boom })
		res := make(chan error)
		go func() { res <- m.Spawn(context.Background()) }()
		synctest.Wait() // the first attempt failed; the backoff waits
		m.Shutdown(context.Background())
		if err := <-res; !errors.Is(err, host.ErrShutdown) || attempts != 1 {
			t.Errorf("Spawn: got %v after %d attempts, want ErrShutdown after 1", err, attempts)
		}
	})
}

func TestResolve(t *testing.T) {
	cfg, err := host.Resolve(host.Config{Name: "n", Executable: "p", Policy: host.Policy{Heartbeat: host.Heartbeat{Interval: time.Second}}})
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.Policy
	got := []any{cfg.CallTimeout, cfg.StopGrace, p.StartTimeout, p.MaxRetries, p.Backoff, p.RestartDelay, p.RestartLimit, p.Heartbeat.Timeout, cfg.Logger != nil}
	want := []any{30 * time.Second, 5 * time.Second, 30 * time.Second, 3, host.Backoff{Base: time.Second, Max: 30 * time.Second, Jitter: 0.2},
		time.Second, host.RestartLimit{Max: 5, Window: time.Minute}, 3 * time.Second, true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults %v, want %v", got, want)
	}
	cfg, _ = host.Resolve(host.Config{Name: "n", Executable: "p", CallTimeout: -1, StopGrace: -1, Policy: host.Policy{MaxRetries: -1, StartTimeout: -1}})
	if cfg.CallTimeout != 0 || cfg.StopGrace != 0 || cfg.Policy.MaxRetries != 0 || cfg.Policy.StartTimeout != 0 {
		t.Errorf("negative values must mean off: %+v", cfg)
	}

	_, err = host.Resolve(host.Config{
		Methods: []host.Method{{Name: "a"}, {Name: "a"}, {}},
		Events:  []host.Event{{Name: "e"}, {Name: "e"}},
		Policy:  host.Policy{Heartbeat: host.Heartbeat{Timeout: time.Second}, Backoff: host.Backoff{Jitter: 2}},
	})
	for _, want := range []string{"Name is empty", "Executable is empty", `method "a" is declared twice`, "Methods[2] has no name",
		`event "e" is declared twice`, "Interval is zero", "Jitter 2 is above 1"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Resolve error %v does not say %q", err, want)
		}
	}
}

func TestChildEnv(t *testing.T) {
	t.Setenv("PROCWIRE_TOKEN", "inherited")
	t.Setenv("HOST_TEST_A", "parent")
	m, err := host.NewModule(host.Config{Name: "env", Executable: "p", Env: []string{"HOST_TEST_A=module", "HOST_TEST_B=b", "PROCWIRE_TOKEN=module", "PROCWIRE_MODULE_NAME=fake"}})
	if err != nil {
		t.Fatal(err)
	}
	count := func(env []string) map[string][]string {
		out := map[string][]string{}
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = append(out[k], v)
		}
		return out
	}
	off := count(host.ChildEnv(m, ""))
	if _, ok := off["PROCWIRE_TOKEN"]; ok {
		t.Errorf("auth off: PROCWIRE_TOKEN = %v, want it removed", off["PROCWIRE_TOKEN"])
	}
	for k, want := range map[string][]string{"HOST_TEST_A": {"module"}, "HOST_TEST_B": {"b"}, "PROCWIRE_MODULE_NAME": {"env"}} {
		if !slices.Equal(off[k], want) {
			t.Errorf("%s = %v, want %v", k, off[k], want)
		}
	}
	on := count(host.ChildEnv(m, "tok"))
	if !slices.Equal(on["PROCWIRE_TOKEN"], []string{"tok"}) {
		t.Errorf("auth on: PROCWIRE_TOKEN = %v, want [tok]", on["PROCWIRE_TOKEN"])
	}
}
