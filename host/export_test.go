package host

import (
	"context"
	"io"
	"time"

	"github.com/procxy/procxy/internal/supervise"
)

// WrapConn makes m wrap each data-plane connection with fn before the rpc
// engine uses it. Tests use it to watch frames.
func WrapConn(m *Module, fn func(io.ReadWriteCloser) io.ReadWriteCloser) { m.wrapConn = fn }

// SetNextID makes id the module's next request id.
func SetNextID(m *Module, id uint32) { m.ids.SetNext(id) }

// OnPong makes m call fn for every $pong line of its children.
func OnPong(m *Module, fn func()) { m.pongHook = fn }

// OnAttempt replaces m's spawn attempts with fn, to test the retry loop
// without processes.
func OnAttempt(m *Module, fn func(ctx context.Context) error) { m.attemptHook = fn }

// NoPdeathsig makes m start children without the parent-death signal, so
// that a test can show they also exit on the EOF of their stdin.
func NoPdeathsig(m *Module) { m.noPdeathsig = true }

// Backoff and limiter internals, for unit tests.
func BackoffDelay(b Backoff, n int, r float64) time.Duration { return b.delay(n, r) }

func NewLimiter(max int, window time.Duration) func(time.Time) bool {
	l := &supervise.Limiter{Max: max, Window: window}
	return l.Allow
}

// RunHeartbeat runs the heartbeat loop (see heartbeat).
var RunHeartbeat = heartbeat

// Lines returns the lines of r as lineReader splits them.
func Lines(r io.Reader, max int) (lines []string, cut []bool, err error) {
	lr := supervise.NewLineReader(r, max)
	for {
		l, c, err := lr.Next()
		if err != nil {
			return lines, cut, err
		}
		lines = append(lines, string(l))
		cut = append(cut, c)
	}
}

// Resolve exposes config resolution.
var Resolve = resolve

// ChildEnv returns the environment m gives its child for token.
func ChildEnv(m *Module, token string) []string {
	var t []byte
	if token != "" {
		t = []byte(token)
	}
	return m.childEnv(t)
}
