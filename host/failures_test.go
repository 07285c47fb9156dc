package host_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/host/internal/testworker"
	"github.com/procxy/procxy/rpc"
)

// TestSpawnFailures: each way a child can fail its start fails the spawn
// with an error that says what happened, after the configured attempts.
func TestSpawnFailures(t *testing.T) {
	tests := []struct {
		mode     string
		retries  int
		attempts int
		check    func(t *testing.T, err error)
	}{
		{testworker.ModeInitError, 1, 2, func(t *testing.T, err error) {
			if !errors.Is(err, host.ErrInitFailed) || !strings.Contains(err.Error(), `module "testworker-error": cannot load model`) {
				t.Errorf("got %v, want ErrInitFailed with the child's message", err)
			}
		}},
		{testworker.ModeExit, 2, 3, func(t *testing.T, err error) {
			var ee *host.ExitError
			if !errors.As(err, &ee) || ee.Code != 7 || !reflect.DeepEqual(ee.Stderr, []string{"testworker: giving up before $init"}) {
				t.Errorf("got %v, want an *ExitError with status 7 and the stderr line", err)
			}
		}},
		{testworker.ModeBadInit, 3, 1, func(t *testing.T, err error) { // not retried
			if !errors.Is(err, host.ErrBadInit) || !strings.Contains(err.Error(), "schema.events") {
				t.Errorf("got %v, want ErrBadInit naming schema.events", err)
			}
		}},
		{testworker.ModeMismatch, 3, 1, func(t *testing.T, err error) { // not retried
			var se *host.SchemaError
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a *SchemaError", err)
			}
			want := []host.SchemaDiff{
				{What: "method", Name: "count", Parent: "stream", Child: "result"},
				{What: "method", Name: "getenv", Parent: "result"},
				{What: "event", Name: "notified"},
			}
			if !reflect.DeepEqual(se.Diffs, want) {
				t.Errorf("diffs = %+v, want %+v", se.Diffs, want)
			}
			msg := `$init schema does not match the config: method "count" response type mismatch (parent declared "stream", child declared "result"); ` +
				`child did not register expected method "getenv"; child did not register expected event "notified"`
			if !strings.Contains(err.Error(), msg) {
				t.Errorf("error %q does not contain %q", err, msg)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			cfg := config(testWorker(tt.mode), newLogSink())
			cfg.Policy.MaxRetries = tt.retries
			m, chs := newModule(t, cfg)
			err := m.Spawn(t.Context())
			var se *host.SpawnError
			if !errors.As(err, &se) || se.Attempts != tt.attempts {
				t.Fatalf("Spawn: got %v, want a *SpawnError after %d attempts", err, tt.attempts)
			}
			tt.check(t, err)
			if st := m.State(); st != host.StateFailed {
				t.Errorf("state %v, want failed", st)
			}
			retries := 0
			for _, c := range chs.all() {
				if c.To == host.StateStarting && c.Err != nil {
					retries++
				}
			}
			if retries != tt.attempts-1 {
				t.Errorf("%d retry changes, want %d: %v", retries, tt.attempts-1, chs.all())
			}
		})
	}
}

// TestInitTimeout: a child that never sends $init is killed after
// Policy.StartTimeout; a spawn whose ctx ends gives up at once.
func TestInitTimeout(t *testing.T) {
	cfg := config(testWorker(testworker.ModeSilent), newLogSink())
	cfg.Policy.StartTimeout = 100 * time.Millisecond
	m, _ := newModule(t, cfg)
	if err := m.Spawn(t.Context()); !errors.Is(err, host.ErrInitTimeout) {
		t.Fatalf("Spawn: got %v, want ErrInitTimeout", err)
	}

	cfg.Policy.StartTimeout = 0
	cfg.Name = "silent-ctx"
	m, _ = newModule(t, cfg)
	ctx, cancel := context.WithCancelCause(t.Context())
	cause := errors.New("caller gave up")
	go func() {
		for m.State() != host.StateStarting {
			time.Sleep(time.Millisecond) // polls a state, not a synchronization sleep
		}
		cancel(cause)
	}()
	if err := m.Spawn(ctx); !errors.Is(err, cause) {
		t.Fatalf("Spawn with a cancelled ctx: got %v, want the ctx's cause", err)
	}
}

// TestShutdownDuringSpawn: Shutdown cancels a spawn in progress and
// leaves the module closed.
func TestShutdownDuringSpawn(t *testing.T) {
	m, chs := newModule(t, config(testWorker(testworker.ModeSilent), newLogSink()))
	res := make(chan error, 1)
	go func() { res <- m.Spawn(t.Context()) }()
	chs.wait(t, 0, host.StateStarting)
	if err := m.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := <-res; !errors.Is(err, host.ErrShutdown) {
		t.Errorf("Spawn: got %v, want ErrShutdown", err)
	}
	if st := m.State(); st != host.StateClosed {
		t.Errorf("state %v, want closed", st)
	}
}

// TestHeartbeatKill: a child that stops answering $ping is killed after
// the timeout, its pending calls fail with ErrHeartbeat, and it restarts.
func TestHeartbeatKill(t *testing.T) {
	cfg := config(testWorker(testworker.ModeNoPong), newLogSink())
	cfg.Policy.Heartbeat = host.Heartbeat{Interval: 50 * time.Millisecond, Timeout: 200 * time.Millisecond}
	cfg.Policy.RestartOnCrash = true
	cfg.Policy.RestartDelay = -1
	m, chs := spawn(t, cfg)
	start := time.Now()
	_, err := host.Call[slowOut](t.Context(), m, "slow", map[string]int{"ms": 60_000})
	if !errors.Is(err, host.ErrHeartbeat) || !errors.Is(err, rpc.ErrClosed) {
		t.Fatalf("pending call: got %v, want ErrHeartbeat", err)
	}
	t.Logf("missed heartbeat detected after %v (interval 50ms, timeout 200ms)", time.Since(start))
	down, next := chs.wait(t, 0, host.StateDisconnected)
	if !errors.Is(down.Err, host.ErrHeartbeat) {
		t.Errorf("disconnected: Err = %v, want ErrHeartbeat", down.Err)
	}
	chs.wait(t, next, host.StateReady)
}

// TestShutdownGrace: a child that ignores $shutdown is killed after
// Config.StopGrace, and Shutdown's ctx can cut the grace short.
func TestShutdownGrace(t *testing.T) {
	cfg := config(testWorker(testworker.ModeIgnoreShutdown), newLogSink())
	cfg.StopGrace = 200 * time.Millisecond
	m, _ := spawn(t, cfg)
	start := time.Now()
	if err := m.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < cfg.StopGrace {
		t.Errorf("Shutdown took %v, less than the grace period", d)
	}

	cfg.StopGrace = 0 // the default 5 s
	cfg.Name = "ignoring-ctx"
	m, _ = spawn(t, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := m.Shutdown(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown with a done ctx: got %v, want context.Canceled", err)
	}
}

// TestShutdownLetsCallsFinish: Shutdown lets a call in flight finish
// within the grace, turns new calls away with ErrShutdown, and fails a
// call still running when the grace is over with ErrShutdown.
func TestShutdownLetsCallsFinish(t *testing.T) {
	for _, tc := range []struct {
		ms      int
		wantErr bool
	}{{ms: 300}, {ms: 60_000, wantErr: true}} {
		cfg := config(testWorker(testworker.ModeOK), newLogSink())
		cfg.StopGrace = 2 * time.Second
		cfg.Name = fmt.Sprintf("slow-%d", tc.ms)
		m, _ := spawn(t, cfg)
		started := make(chan progress, 1)
		remove := host.OnEvent(m, "progress", func(p progress) { started <- p })
		result := make(chan error, 1)
		go func() {
			_, err := host.Call[slowOut](t.Context(), m, "slow", map[string]any{"ms": tc.ms, "announce": true})
			result <- err
		}()
		<-started
		remove()
		shut := make(chan error, 1)
		go func() { shut <- m.Shutdown(t.Context()) }()
		for m.State() != host.StateStopping {
			runtime.Gosched()
		}
		if _, err := host.Call[string](t.Context(), m, "echo", "late"); !errors.Is(err, host.ErrShutdown) {
			t.Errorf("a call during Shutdown: got %v, want ErrShutdown", err)
		}
		err := <-result
		switch {
		case tc.wantErr && (!errors.Is(err, host.ErrShutdown) || !errors.Is(err, rpc.ErrClosed)):
			t.Errorf("slow %d ms over the grace: got %v, want ErrShutdown", tc.ms, err)
		case !tc.wantErr && err != nil:
			t.Errorf("slow %d ms within the grace: %v", tc.ms, err)
		}
		if err := <-shut; err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}
}

// TestConnLost: a child that closes its data connection and stays alive
// is killed, so that the restart policy applies.
func TestConnLost(t *testing.T) {
	m, chs := spawn(t, config(testWorker(testworker.ModeDropConn), newLogSink()))
	failed, _ := chs.wait(t, 0, host.StateFailed)
	var ee *host.ExitError
	if !errors.Is(failed.Err, host.ErrConnLost) || errors.As(failed.Err, &ee) {
		t.Errorf("failed: Err = %v, want ErrConnLost", failed.Err)
	}
	if _, err := host.Call[any](t.Context(), m, "echo", 1); !errors.Is(err, host.ErrNotReady) || !errors.Is(err, host.ErrConnLost) {
		t.Errorf("call: got %v, want ErrNotReady wrapping ErrConnLost", err)
	}
}

// TestNoisyChild: stray stdout text, non-control JSON, an over-long line
// and CR/CRLF line ends do not disturb the handshake, and all of it is
// logged, tagged, with the over-long line cut.
func TestNoisyChild(t *testing.T) {
	sink := newLogSink()
	m, _ := spawn(t, config(testWorker(testworker.ModeNoise), sink))
	if got, err := host.Call[string](t.Context(), m, "echo", "hi"); err != nil || got != "hi" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	for _, sub := range []string{"plain text on stdout", "{not json", `"method":"log"`, "cr-one", "cr-two", "crlf-three"} {
		r := sink.output(t, "stdout", sub)
		if r.Attrs["module"] != "testworker-noise" || r.Attrs["truncated"] != "" {
			t.Errorf("record %+v: want module=testworker-noise, not truncated", r)
		}
	}
	long := sink.output(t, "stdout", "xxxxxxxx")
	if len(long.Msg) != host.MaxLineSize || long.Attrs["truncated"] != "true" {
		t.Errorf("long line logged with %d bytes, truncated=%q; want %d, true", len(long.Msg), long.Attrs["truncated"], host.MaxLineSize)
	}
	sink.output(t, "stderr", "a line on stderr before $init")
}

// TestTimeouts: result calls are bounded by the method's timeout, else the
// child's $init timeout, else the module default (§9.1, §13.5); a negative
// method timeout disables it. A timeout sends the child an abort frame.
func TestTimeouts(t *testing.T) {
	type step struct {
		ms      int  // slow's duration
		timeout bool // the call must time out
	}
	tests := []struct {
		name    string
		mode    string
		method  time.Duration // Method.Timeout of slow
		module  time.Duration // Config.CallTimeout
		steps   []step
		timeout time.Duration // the expected bound
	}{
		// 1 s, not less: the second call (5 ms) must not time out on a loaded machine.
		{"method", testworker.ModeOK, time.Second, 0, []step{{5000, true}, {5, false}}, time.Second},
		{"module default", testworker.ModeOK, 0, 100 * time.Millisecond, []step{{5000, true}}, 100 * time.Millisecond},
		{"method disabled", testworker.ModeOK, -1, 50 * time.Millisecond, []step{{300, false}}, 0},
		{"child schema", testworker.ModeSchemaTimeout, 0, time.Minute, []step{{5000, true}}, 150 * time.Millisecond},
		{"method over child schema", testworker.ModeSchemaTimeout, 2 * time.Second, time.Minute, []step{{300, false}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config(testWorker(tt.mode), newLogSink())
			cfg.Name = strings.ReplaceAll(tt.name, " ", "-")
			cfg.CallTimeout = tt.module
			cfg.Methods[4].Timeout = tt.method // slow
			m, _ := newModule(t, cfg)
			conn := taps(m, false)
			if err := m.Spawn(t.Context()); err != nil {
				t.Fatal(err)
			}
			for _, st := range tt.steps {
				start := time.Now()
				got, err := host.Call[slowOut](t.Context(), m, "slow", map[string]int{"ms": st.ms})
				took := time.Since(start)
				if !st.timeout {
					if err != nil || got.Slept != st.ms {
						t.Fatalf("slow(%d) = %+v, %v; want no timeout", st.ms, got, err)
					}
					continue
				}
				if !errors.Is(err, host.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("slow(%d): got %v, want ErrTimeout", st.ms, err)
				}
				if took < tt.timeout {
					t.Errorf("timed out after %v, before %v", took, tt.timeout)
				}
				req := lastOut(conn(), 5)
				conn().wait(t, "abort after the timeout", func(f frame) bool { return f.Out && f.Method == methodAbort && f.ID == req.ID })
			}
		})
	}
}

// TestSpawnStates: Spawn on a ready module is a no-op, Spawn while
// stopping or starting is refused, and a closed module spawns again.
func TestSpawnStates(t *testing.T) {
	m, chs := spawn(t, config(testWorker(testworker.ModeOK), newLogSink()))
	pid := m.PID()
	if err := m.Spawn(t.Context()); err != nil || m.PID() != pid {
		t.Fatalf("second Spawn: %v, pid %d → %d", err, pid, m.PID())
	}
	if err := m.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := host.Call[any](t.Context(), m, "echo", 1); !errors.Is(err, host.ErrNotReady) {
		t.Errorf("call after Shutdown: got %v, want ErrNotReady", err)
	}
	if err := m.Spawn(t.Context()); err != nil {
		t.Fatalf("Spawn after Shutdown: %v", err)
	}
	chs.wait(t, 3, host.StateReady) // changes arrive asynchronously
	var got []host.State
	for _, c := range chs.all() {
		got = append(got, c.To)
	}
	want := []host.State{host.StateStarting, host.StateConnecting, host.StateReady, host.StateStopping, host.StateClosed,
		host.StateStarting, host.StateConnecting, host.StateReady}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("states %v, want %v", got, want)
	}
}

// TestGrandchild: descendants of a worker die with it, so that they
// neither outlive it nor keep its output pipes (and Shutdown) waiting.
func TestGrandchild(t *testing.T) {
	sink := newLogSink()
	m, chs := spawn(t, config(testWorker(testworker.ModeGrandchild), sink))
	var pid int
	r := sink.output(t, "stderr", "grandchild ")
	if _, err := fmt.Sscanf(r.Msg, "grandchild %d", &pid); err != nil {
		t.Fatal(err)
	}
	host.Send(t.Context(), m, "crash", nil)
	failed, _ := chs.wait(t, 0, host.StateFailed)
	var ee *host.ExitError
	if !errors.As(failed.Err, &ee) || ee.Code != 3 {
		t.Errorf("failed: %v, want exit status 3", failed.Err)
	}
	waitGone(t, pid)
}
