package host_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/internal/delve/delvetest"
)

// TestDebugUnderDelve runs the Go echoworker (built with DWARF and no
// optimizations) under a real dlv, stops it at a breakpoint in the echo
// handler while a call is in it, continues it and sees the call complete.
func TestDebugUnderDelve(t *testing.T) {
	dlv := delvetest.Dlv(t)
	exe := filepath.Join(t.TempDir(), "echoworker")
	if out, err := exec.Command("go", "build", "-gcflags=all=-N -l", "-o", exe, "../examples/echoworker").CombinedOutput(); err != nil {
		t.Fatalf("go build examples/echoworker: %v\n%s", err, out)
	}
	sink := newLogSink()
	cfg := config(workerKind{name: "debugged", path: exe}, sink)
	cfg.Debug = &host.Delve{Path: dlv}
	m, _ := spawn(t, cfg)
	addr := sink.wait(t, "with dlv's address", func(r record) bool { return r.Attrs["dlv"] != "" }).Attrs["dlv"]
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("dlv address = %q, want one on 127.0.0.1", addr)
	}
	if got, err := host.Call[string](t.Context(), m, "echo", "before"); err != nil || got != "before" {
		t.Fatalf("echo under dlv = %q, %v; want before", got, err)
	}

	c := delvetest.Connect(t, addr)
	if _, err := c.Command("halt"); err != nil {
		t.Fatal(err)
	}
	const fn = "main.newWorker.func1" // the echo handler
	bp, err := c.CreateBreakpoint(fn)
	if err != nil {
		t.Fatal(err)
	}
	type stateOrErr struct {
		st  *delvetest.State
		err error
	}
	cont := make(chan stateOrErr, 1)
	go func() { st, err := c.Command("continue"); cont <- stateOrErr{st, err} }()
	type result struct {
		s   string
		err error
	}
	called := make(chan result, 1)
	go func() {
		s, err := host.Call[string](context.Background(), m, "echo", "stepped")
		called <- result{s, err}
	}()
	stop := <-cont
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
	if r := <-called; r.err != nil || r.s != "stepped" {
		t.Fatalf("echo after the breakpoint = %q, %v; want stepped", r.s, r.err)
	}
	if err := m.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	<-cont // dlv ended its target and quit
}
