package procxy_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/procxy/procxy"
)

// newProxy starts a child serving T, its output logged to the test, and
// closes it when the test ends.
func newProxy[T any](t *testing.T, opts ...procxy.Option) *procxy.Proxy[T] {
	t.Helper()
	p, err := procxy.New[T](t.Context(), append([]procxy.Option{procxy.Logger(childLog(t))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

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
