package host_test

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/host/internal/testworker"
)

// TestRecycleAfterCalls: a module whose Recycle.Calls is reached replaces
// its child — a planned restart, without RestartOnCrash — and the next
// call works on the new child. Calls through Invoke count as Call's do,
// and a stream counts as a call: its child stops once it has ended.
func TestRecycleAfterCalls(t *testing.T) {
	for _, tc := range []struct {
		name string
		call func(m *host.Module) error
	}{
		{"Call", func(m *host.Module) error {
			_, err := host.Call[string](t.Context(), m, "echo", "hi")
			return err
		}},
		{"Invoke", func(m *host.Module) error {
			_, err := m.Invoke(t.Context(), "echoRaw", []byte("hi"))
			return err
		}},
		{"Stream", func(m *host.Module) error {
			n := 0
			for _, err := range host.Stream[map[string]int](t.Context(), m, "count", map[string]int{"n": 3}) {
				if err != nil {
					return err
				}
				n++
			}
			if n != 3 {
				return fmt.Errorf("got %d chunks, want 3", n)
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(testWorker(testworker.ModeOK), newLogSink())
			cfg.Recycle = host.Recycle{Calls: 2}
			m, chs := spawn(t, cfg)
			first := m.PID()
			for range 2 {
				if err := tc.call(m); err != nil {
					t.Fatal(err)
				}
			}
			down, next := chs.wait(t, 0, host.StateDisconnected)
			if !errors.Is(down.Err, host.ErrRecycled) {
				t.Errorf("disconnected: Err = %v, want ErrRecycled", down.Err)
			}
			if up, _ := chs.wait(t, next, host.StateReady); up.PID == first {
				t.Fatalf("ready again with the same pid %d", first)
			}
			if got, err := host.Call[string](t.Context(), m, "echo", "again"); err != nil || got != "again" {
				t.Fatalf("echo on the new child = %q, %v", got, err)
			}
		})
	}
}

// TestKillOnTimeout: a call that times out, whose method ignores the
// abort, gets the child recycled after Recycle.KillOnTimeout, and the
// module comes back with a new child.
func TestKillOnTimeout(t *testing.T) {
	cfg := config(testWorker(testworker.ModeOK), newLogSink())
	cfg.CallTimeout = 100 * time.Millisecond
	cfg.Recycle = host.Recycle{KillOnTimeout: 50 * time.Millisecond}
	m, chs := spawn(t, cfg)
	first := m.PID()
	if _, err := host.Call[slowOut](t.Context(), m, "slow", map[string]any{"ms": 60_000, "ignoreAbort": true}); !errors.Is(err, host.ErrTimeout) {
		t.Fatalf("slow: got %v, want ErrTimeout", err)
	}
	down, next := chs.wait(t, 0, host.StateDisconnected)
	var ee *host.ExitError
	if !errors.Is(down.Err, host.ErrRecycled) || !errors.As(down.Err, &ee) || ee.PID != first {
		t.Errorf("disconnected: Err = %v, want the first child's *ExitError matching ErrRecycled", down.Err)
	}
	up, _ := chs.wait(t, next, host.StateReady)
	if up.PID == first {
		t.Fatalf("ready again with the same pid %d", first)
	}
}

// TestKillOnTimeoutSparesMethodThatReturns: a timed-out method that
// returns within the grace — here one that honours the abort, and one
// that ignores it but ends soon after — leaves the child alone.
func TestKillOnTimeoutSparesMethodThatReturns(t *testing.T) {
	const grace = 2 * time.Second
	cfg := config(testWorker(testworker.ModeOK), newLogSink())
	cfg.CallTimeout = 20 * time.Millisecond
	cfg.Recycle = host.Recycle{KillOnTimeout: grace}
	m, _ := spawn(t, cfg)
	first := m.PID()
	var last time.Time
	for _, in := range []map[string]any{{"ms": 60_000}, {"ms": 200, "ignoreAbort": true}} {
		if _, err := host.Call[slowOut](t.Context(), m, "slow", in); !errors.Is(err, host.ErrTimeout) {
			t.Fatalf("slow %v: got %v, want ErrTimeout", in, err)
		}
		last = time.Now()
	}
	time.Sleep(time.Until(last.Add(grace + grace/2))) // the kill would have come by now
	if pid := m.PID(); pid != first {
		t.Fatalf("the child was replaced (pid %d, then %d) though its methods returned within the grace", first, pid)
	}
	if _, err := host.Call[string](t.Context(), m, "echo", "hi"); err != nil {
		t.Fatal(err)
	}
}

// TestRecycleOverRSS: a child whose resident memory passes Recycle.MaxRSS
// is killed, the module says why, and comes back with a new child.
func TestRecycleOverRSS(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the resident-memory watchdog reads /proc (Linux)")
	}
	cfg := config(testWorker(testworker.ModeHog), newLogSink())
	cfg.Recycle = host.Recycle{MaxRSS: 256 << 20}
	m, chs := newModule(t, cfg)
	if err := m.Spawn(t.Context()); err != nil && !errors.Is(err, host.ErrRecycled) {
		t.Fatalf("Spawn: %v", err)
	}
	down, next := chs.wait(t, 0, host.StateDisconnected)
	var ee *host.ExitError
	if !errors.As(down.Err, &ee) || !errors.Is(down.Err, host.ErrRecycled) || !strings.Contains(down.Err.Error(), " over the limit 256.0 MiB") {
		t.Fatalf("disconnected: Err = %v, want an *ExitError naming the resident-memory limit", down.Err)
	}
	t.Logf("the module reports: %v", down.Err)
	if up, _ := chs.wait(t, next, host.StateReady); up.PID == ee.PID {
		t.Fatalf("ready again with the same pid %d", ee.PID)
	}
}
