package host

import (
	"context"
	"os/exec"
	"strings"
	"time"

	"github.com/procxy/procxy/internal/delve"
)

// Delve says how Config.Debug runs a module's child under Delve's headless
// debugger: which dlv binary (Path; empty means $PROCXY_DLV, else "dlv" in
// PATH), the address its API listens on (Listen; empty means a free port
// on 127.0.0.1) and whether the child waits before main for a client to
// continue it (Wait). It is the same type as procxy.Delve.
type Delve = delve.Config

// debugConfig applies Config.Debug, or PROCXY_DEBUG naming the module,
// and what debugging implies: a child stopped at a breakpoint must not be
// taken for a hung one, so the init timeout stretches to at least 10
// minutes, call timeouts and the heartbeat are off.
func debugConfig(cfg *Config) {
	if cfg.Debug == nil {
		if d, ok := delve.FromEnv(cfg.Name); ok {
			cfg.Debug = &d
		}
	}
	if cfg.Debug == nil {
		return
	}
	d := *cfg.Debug // our own copy
	cfg.Debug = &d
	cfg.CallTimeout = -1
	for i := range cfg.Methods {
		cfg.Methods[i].Timeout = -1
	}
	if cfg.Policy.StartTimeout >= 0 {
		cfg.Policy.StartTimeout = max(cfg.Policy.StartTimeout, delve.StartTimeout)
	}
	cfg.Policy.Heartbeat.Interval = 0
}

// debugCommand is the program and arguments that run the module's
// program under dlv. dlv exec does not search PATH, so a bare program
// name is resolved here.
func (m *Module) debugCommand() (string, []string) {
	path := m.cfg.Executable
	if !strings.ContainsRune(path, '/') {
		if p, err := exec.LookPath(path); err == nil {
			path = p
		}
	}
	return m.cfg.Debug.Command(path, m.cfg.Args)
}

// sawDebugger records and logs dlv's address when line announces it.
func (s *session) sawDebugger(line []byte) bool {
	if s.m.cfg.Debug == nil || s.dlvAddr.Load() != nil {
		return false
	}
	addr, ok := delve.Address(string(line))
	if !ok {
		return false
	}
	s.dlvAddr.Store(&addr)
	s.m.log.Info("host: child running under dlv; connect with dlv connect "+addr, "dlv", addr)
	return true
}

// stopDebuggerAfter tells the child's dlv to quit once the data channel
// to its target has ended: a headless dlv outlives its target.
func (s *session) stopDebuggerAfter(done <-chan struct{}) {
	if s.m.cfg.Debug == nil {
		return
	}
	s.m.wg.Go(func() {
		select {
		case <-s.sup.Proc().Exited():
			return
		case <-done:
		}
		if addr := s.dlvAddr.Load(); addr != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			delve.Stop(ctx, *addr) // on failure the shutdown grace ends in a kill
		}
	})
}
