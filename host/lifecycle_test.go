package host_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/rpc"
)

var workerKinds = []func(testing.TB) workerKind{nodeWorker, goWorker}

// TestCrashMidCall: a worker that exits while a call is pending fails the
// call at once with the exit status, and the module restarts per policy —
// until the restart budget is spent.
func TestCrashMidCall(t *testing.T) {
	for _, kind := range workerKinds {
		w := kind(t)
		t.Run(w.name, func(t *testing.T) {
			cfg := config(w, newLogSink())
			cfg.Policy.RestartOnCrash = true
			cfg.Policy.RestartDelay = 10 * time.Millisecond
			cfg.Policy.RestartLimit = host.RestartLimit{Max: 1, Window: time.Minute}
			m, chs := newModule(t, cfg)
			conn := taps(m, false)
			if err := m.Spawn(t.Context()); err != nil {
				t.Fatal(err)
			}
			pid := m.PID()

			res := make(chan error, 1)
			go func() {
				_, err := host.Call[slowOut](t.Context(), m, "slow", map[string]int{"ms": 60_000})
				res <- err
			}()
			conn().wait(t, "slow request", func(f frame) bool { return f.Out && f.Method == 5 })
			crashed := time.Now()
			if err := host.Send(t.Context(), m, "crash", nil); err != nil {
				t.Fatal(err)
			}
			err := <-res
			t.Logf("%s: pending call failed %v after the crash request: %v", w.name, time.Since(crashed), err)
			var ee *host.ExitError
			if !errors.As(err, &ee) || ee.Code != 3 || ee.PID != pid || !errors.Is(err, rpc.ErrClosed) {
				t.Fatalf("pending call: got %v, want an *ExitError with status 3 wrapping rpc.ErrClosed", err)
			}
			if !strings.Contains(strings.Join(ee.Stderr, "\n"), "status 3") {
				t.Errorf("ExitError.Stderr = %q, want the child's last stderr lines", ee.Stderr)
			}

			down, next := chs.wait(t, 0, host.StateDisconnected)
			if !errors.As(down.Err, &ee) {
				t.Errorf("disconnected change: Err = %v, want the *ExitError", down.Err)
			}
			up, next := chs.wait(t, next, host.StateReady)
			if up.PID == pid || up.PID != m.PID() {
				t.Errorf("restarted with pid %d (module says %d), old pid %d", up.PID, m.PID(), pid)
			}
			if got, err := host.Call[string](t.Context(), m, "echo", "again"); err != nil || got != "again" {
				t.Fatalf("echo after restart = %q, %v", got, err)
			}

			// The second crash within the window exceeds RestartLimit.Max = 1.
			host.Send(t.Context(), m, "crash", nil)
			failed, _ := chs.wait(t, next, host.StateFailed)
			if !errors.Is(failed.Err, host.ErrTooManyRestarts) || !errors.As(failed.Err, &ee) {
				t.Errorf("failed change: Err = %v, want ErrTooManyRestarts wrapping the *ExitError", failed.Err)
			}
			if _, err := host.Call[any](t.Context(), m, "echo", 1); !errors.Is(err, host.ErrNotReady) {
				t.Errorf("call on a failed module: got %v, want ErrNotReady", err)
			}
		})
	}
}

// TestAuth: with Policy.Auth the first frame is the AUTH frame carrying
// the 64-hex-digit token the child got in PROCWIRE_TOKEN, and calls work.
func TestAuth(t *testing.T) {
	for _, kind := range workerKinds {
		w := kind(t)
		t.Run(w.name, func(t *testing.T) {
			cfg := config(w, newLogSink())
			cfg.Policy.Auth = true
			m, _ := newModule(t, cfg)
			conn := taps(m, false)
			if err := m.Spawn(t.Context()); err != nil {
				t.Fatal(err)
			}
			tok, err := host.Call[string](t.Context(), m, "getenv", map[string]string{"name": "PROCWIRE_TOKEN"})
			if err != nil {
				t.Fatal(err)
			}
			if b, err := hex.DecodeString(tok); err != nil || len(b) != 32 || strings.ToLower(tok) != tok {
				t.Errorf("PROCWIRE_TOKEN = %q, want 64 lowercase hex digits", tok)
			}
			first := conn().all()[0]
			if !first.Out || first.Method != methodAuth || first.ID != 0 || string(first.Payload) != tok {
				t.Errorf("first frame = %+v, want AUTH with the token %q", first, tok)
			}
		})
	}
}

// TestAuthWrongToken: the child drops a connection whose AUTH frame is
// wrong. As with the reference parent (§13.7) the spawn succeeds, then the
// module sees its data channel lost, kills the child and applies the
// restart policy (here: none, so it fails).
func TestAuthWrongToken(t *testing.T) {
	for _, kind := range workerKinds {
		w := kind(t)
		t.Run(w.name, func(t *testing.T) {
			cfg := config(w, newLogSink())
			cfg.Policy.Auth = true
			m, chs := newModule(t, cfg)
			taps(m, true)
			if err := m.Spawn(t.Context()); err != nil {
				t.Fatalf("Spawn: %v (the spawn does not wait for the child to accept the token)", err)
			}
			_, callErr := host.Call[any](t.Context(), m, "echo", 1)
			failed, _ := chs.wait(t, 0, host.StateFailed)
			var ee *host.ExitError
			switch {
			case errors.Is(failed.Err, host.ErrConnLost):
				// The Node child keeps listening for the real parent; we kill it.
			case w.name != "node" && errors.As(failed.Err, &ee):
				// A Go worker may end its session, and exit, first.
			default:
				t.Fatalf("failed change: Err = %v, want ErrConnLost", failed.Err)
			}
			if callErr == nil {
				t.Fatal("a call with a rejected token succeeded")
			}
			t.Logf("%s: call with a wrong token: %v", w.name, callErr)
		})
	}
}
