package host_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/host/internal/testworker"
)

// TestManager: modules register by unique name, spawn and shut down
// together, and report every change on the manager's one callback.
func TestManager(t *testing.T) {
	var mu sync.Mutex
	seen := map[string][]host.State{}
	mg := host.NewManager(host.ManagerOptions{OnChange: func(c host.Change) {
		mu.Lock()
		seen[c.Module] = append(seen[c.Module], c.To)
		mu.Unlock()
	}})
	var mods []*host.Module
	for _, name := range []string{"a", "b"} {
		cfg := config(testWorker(testworker.ModeOK), newLogSink())
		cfg.Name = name
		m, _ := newModule(t, cfg)
		if err := mg.Register(m); err != nil {
			t.Fatal(err)
		}
		mods = append(mods, m)
	}
	dup, _ := host.NewModule(host.Config{Name: "a", Executable: "x"})
	if err := mg.Register(dup); !errors.Is(err, host.ErrDuplicate) {
		t.Errorf("Register duplicate: got %v, want ErrDuplicate", err)
	}
	if err := host.NewManager(host.ManagerOptions{}).Register(mods[0]); !errors.Is(err, host.ErrDuplicate) {
		t.Errorf("Register with a second manager: got %v, want ErrDuplicate", err)
	}
	if got := mg.Modules(); !slices.Equal(got, mods) || mg.Module("b") != mods[1] || mg.Module("zz") != nil {
		t.Errorf("Modules() = %v", got)
	}
	if err := mg.Spawn(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, m := range mods {
		if got, err := host.Call[string](t.Context(), m, "echo", m.Name()); err != nil || got != m.Name() {
			t.Errorf("%s: echo = %q, %v", m.Name(), got, err)
		}
	}
	if err := mg.Unregister(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if mods[0].State() != host.StateClosed || mg.Module("a") != nil || len(mg.Modules()) != 1 {
		t.Errorf("after Unregister: a is %v, modules %v", mods[0].State(), mg.Modules())
	}
	if err := mg.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	// Wait until b's close reached the manager's callback.
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(seen["b"], host.StateClosed)
	})
	mu.Lock()
	defer mu.Unlock()
	want := []host.State{host.StateStarting, host.StateConnecting, host.StateReady, host.StateStopping, host.StateClosed}
	for _, name := range []string{"a", "b"} {
		if !slices.Equal(seen[name], want) {
			t.Errorf("manager saw %s go %v, want %v", name, seen[name], want)
		}
	}
}

// TestSpawnJoinsErrors: Manager.Spawn reports every module that failed.
func TestSpawnJoinsErrors(t *testing.T) {
	mg := host.NewManager(host.ManagerOptions{})
	for _, mode := range []string{testworker.ModeOK, testworker.ModeExit, testworker.ModeBadPipe} {
		m, _ := newModule(t, config(testWorker(mode), newLogSink()))
		mg.Register(m)
	}
	err := mg.Spawn(t.Context())
	var ee *host.ExitError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "data channel connect failed") {
		t.Errorf("Spawn: got %v, want the exit and the failed connect", err)
	}
	if st := mg.Module("testworker-ok").State(); st != host.StateReady {
		t.Errorf("the good module is %v, want ready", st)
	}
}
