package procxy_test

import (
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/internal/delve/delvetest"
)

// dlvLog is a slog handler that passes on the address a proxy logs for
// its child's dlv.
type dlvLog struct{ addr chan string }

func (h dlvLog) Enabled(context.Context, slog.Level) bool { return true }
func (h dlvLog) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h dlvLog) WithGroup(string) slog.Handler            { return h }
func (h dlvLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "dlv" {
			select {
			case h.addr <- a.Value.String():
			default:
			}
		}
		return true
	})
	return nil
}

// DebugAdder is the parent's view of testdata/debugchild's Adder.
type DebugAdder struct{}

// buildDebugChild builds testdata/debugchild with DWARF and without
// optimizations, as one builds a program to debug.
func buildDebugChild(t *testing.T) string {
	t.Helper()
	exe := filepath.Join(t.TempDir(), "debugchild")
	cmd := exec.Command("go", "build", "-gcflags=all=-N -l", "-o", exe, "./testdata/debugchild")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build testdata/debugchild: %v\n%s", err, out)
	}
	return exe
}

type stateOrErr struct {
	st  *delvetest.State
	err error
}

// TestDebugUnderDelve starts a child under a real dlv, connects to its API
// as an IDE does, stops the child at a breakpoint in the method a call
// runs, continues it, and sees the call complete.
func TestDebugUnderDelve(t *testing.T) {
	dlv := delvetest.Dlv(t)
	exe := buildDebugChild(t)
	log := dlvLog{addr: make(chan string, 1)}
	p, err := procxy.New[DebugAdder](t.Context(), procxy.Debug(procxy.Delve{Path: dlv}), procxy.Executable(exe),
		procxy.Name("debugchild.Adder"), procxy.Config(100), procxy.Logger(slog.New(log)))
	if err != nil {
		t.Fatalf("New under dlv: %v", err)
	}
	defer p.Close()
	addr := <-log.addr
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("dlv address = %q, want one on 127.0.0.1", addr)
	}
	// The child works as usual while dlv runs it.
	if got, err := procxy.Call[int](t.Context(), p, "Add", 1, 2); err != nil || got != 103 {
		t.Fatalf("Add(1, 2) under dlv = %d, %v; want 103", got, err)
	}

	c := delvetest.Connect(t, addr)
	if _, err := c.Command("halt"); err != nil {
		t.Fatal(err)
	}
	gs, err := c.Goroutines()
	if err != nil || len(gs) == 0 {
		t.Fatalf("ListGoroutines = %d goroutines, %v; want some", len(gs), err)
	}
	const fn = "main.(*Adder).Add"
	bp, err := c.CreateBreakpoint(fn)
	if err != nil {
		t.Fatal(err)
	}
	cont := make(chan stateOrErr, 1)
	go func() { st, err := c.Command("continue"); cont <- stateOrErr{st, err} }()
	type result struct {
		v   int
		err error
	}
	called := make(chan result, 1)
	go func() {
		v, err := procxy.Call[int](context.Background(), p, "Add", 20, 3)
		called <- result{v, err}
	}()
	stop := <-cont // the child stopped at the breakpoint, in the middle of the call
	if stop.err != nil {
		t.Fatalf("continue to the breakpoint: %v", stop.err)
	}
	if th := stop.st.CurrentThread; th == nil || th.Breakpoint == nil || th.Breakpoint.ID != bp.ID {
		t.Fatalf("child stopped at %+v, want breakpoint %d on %s", th, bp.ID, fn)
	}
	if err := c.ClearBreakpoint(bp.ID); err != nil {
		t.Fatal(err)
	}
	go func() { st, err := c.Command("continue"); cont <- stateOrErr{st, err} }()
	if r := <-called; r.err != nil || r.v != 123 {
		t.Fatalf("Add(20, 3) after the breakpoint = %d, %v; want 123", r.v, r.err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	<-cont // dlv ended its target and quit
	if p.Process() != nil {
		t.Errorf("Process() after Close = %v, want nil", p.Process())
	}
}

// TestDebugFromEnv: PROCXY_DEBUG naming the type key (and PROCXY_DLV
// naming dlv) runs the child under dlv without the Debug option.
func TestDebugFromEnv(t *testing.T) {
	t.Setenv("PROCXY_DLV", delvetest.Dlv(t))
	t.Setenv(procxy.EnvDebug, "other.Type, debugchild.Adder")
	exe := buildDebugChild(t)
	log := dlvLog{addr: make(chan string, 1)}
	p, err := procxy.New[DebugAdder](t.Context(), procxy.Executable(exe), procxy.Name("debugchild.Adder"),
		procxy.Config(1), procxy.Logger(slog.New(log)))
	if err != nil {
		t.Fatalf("New with %s set: %v", procxy.EnvDebug, err)
	}
	defer p.Close()
	if addr := <-log.addr; !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("dlv address = %q, want one on 127.0.0.1", addr)
	}
	if got, err := procxy.Call[int](t.Context(), p, "Add", 1, 2); err != nil || got != 4 {
		t.Fatalf("Add(1, 2) = %d, %v; want 4", got, err)
	}
}
