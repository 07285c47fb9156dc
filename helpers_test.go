package procxy_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func pid() int { return os.Getpid() }

// waitFor polls cond until it holds; the test's own timeout bounds it.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		time.Sleep(10 * time.Millisecond)
	}
}

// childLog returns a logger for children's output that fails t if a child
// reports a data race: the race detector in a child cannot fail the test
// by itself.
func childLog(t *testing.T) *slog.Logger {
	h := &raceWatch{}
	t.Cleanup(func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.race {
			t.Errorf("a child reported a data race:\n%s", strings.Join(h.lines, "\n"))
		}
	})
	return slog.New(h)
}

type raceWatch struct {
	mu    sync.Mutex
	race  bool
	lines []string
}

func (h *raceWatch) Enabled(context.Context, slog.Level) bool { return true }
func (h *raceWatch) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *raceWatch) WithGroup(string) slog.Handler            { return h }
func (h *raceWatch) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if strings.Contains(r.Message, "DATA RACE") {
		h.race = true
	}
	if h.race && len(h.lines) < 200 {
		h.lines = append(h.lines, r.Message)
	}
	return nil
}
