package host_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/host/internal/testworker"
	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
)

// envParent makes the test binary a parent process for the parent-death
// tests (see parentMain).
const envParent = "HOST_TEST_PARENT"

var buildDir string // holds the Go echoworker built for this run

func TestMain(m *testing.M) {
	if mode := os.Getenv(testworker.EnvMode); mode != "" {
		os.Exit(testworker.Run(mode))
	}
	if mode := os.Getenv(envParent); mode != "" {
		os.Exit(parentMain(mode))
	}
	// Workers that are this test binary re-run must not sleep 1 s at exit
	// under -race (the race runtime's default atexit_sleep_ms).
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	if err := becomeSubreaper(); err != nil {
		fmt.Fprintln(os.Stderr, "host tests:", err)
		os.Exit(2)
	}
	dir, err := os.MkdirTemp("", "host-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "host tests:", err)
		os.Exit(2)
	}
	buildDir = dir
	goleak.VerifyTestMain(checkedRun{m})
}

// checkedRun runs the tests, then fails the run if any child process is
// still alive: no worker may outlive its test.
type checkedRun struct{ m *testing.M }

func (c checkedRun) Run() int {
	code := c.m.Run()
	os.RemoveAll(buildDir)
	if left := leftoverChildren(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "host tests: %d child processes outlived the tests: %v\n", len(left), left)
		return 1
	}
	return code
}

// ---- workers ------------------------------------------------------------

// workerKind is a worker program with the interop method set.
type workerKind struct {
	name string
	path string
	args []string
	env  []string
}

// nodeWorker returns the Node.js worker on @procwire/client. It fails the
// test when node or the pinned npm packages are missing.
func nodeWorker(t testing.TB) workerKind {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (%v): the interop tests need Node.js; run ./scripts/test", err)
	}
	script, err := filepath.Abs("../interop/nodeworker/worker.mjs")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("../interop/node_modules/@procwire/client/package.json"); err != nil {
		t.Fatalf("interop/node_modules is missing @procwire/client (%v): run ./scripts/test (npm ci in interop/)", err)
	}
	return workerKind{name: "node", path: node, args: []string{script}}
}

var buildEcho = sync.OnceValues(func() (string, error) {
	exe := filepath.Join(buildDir, "echoworker")
	out, err := exec.Command("go", "build", "-o", exe, "../examples/echoworker").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./examples/echoworker: %v\n%s", err, out)
	}
	return exe, nil
})

// goWorker returns examples/echoworker, built once per run.
func goWorker(t testing.TB) workerKind {
	t.Helper()
	exe, err := buildEcho()
	if err != nil {
		t.Fatal(err)
	}
	return workerKind{name: "go", path: exe}
}

// testWorker returns this test binary re-run as a testworker in mode.
func testWorker(mode string) workerKind {
	return workerKind{name: "testworker-" + mode, path: os.Args[0], env: []string{testworker.EnvMode + "=" + mode}}
}

// interopMethods are the methods of every interop worker.
func interopMethods() []host.Method {
	return []host.Method{
		{Name: "echo"},
		{Name: "echoRaw", Request: codec.Raw, Response: codec.Raw},
		{Name: "fail"},
		{Name: "count", Kind: rpc.KindStream},
		{Name: "slow"},
		{Name: "accept", Kind: rpc.KindAck},
		{Name: "notify", Kind: rpc.KindNone},
		{Name: "getenv"},
		{Name: "crash", Kind: rpc.KindNone},
	}
}

func interopEvents() []host.Event { return []host.Event{{Name: "progress"}, {Name: "notified"}} }

// config returns a Config for w with the interop methods and events, a
// fast retry policy and a log sink.
func config(w workerKind, sink *logSink) host.Config {
	return host.Config{
		Name:       w.name,
		Executable: w.path,
		Args:       w.args,
		Env:        append([]string(nil), w.env...),
		Methods:    interopMethods(),
		Events:     interopEvents(),
		Policy:     host.Policy{MaxRetries: -1, Backoff: host.Backoff{Base: time.Millisecond}},
		Logger:     slog.New(sink),
	}
}

// ---- modules ------------------------------------------------------------

// changes collects a module's state changes.
type changes struct {
	mu   sync.Mutex
	list []host.Change
	ch   chan struct{} // closed and replaced on every change
}

func newChanges() *changes { return &changes{ch: make(chan struct{})} }

func (c *changes) add(ch host.Change) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, ch)
	close(c.ch)
	c.ch = make(chan struct{})
}

func (c *changes) all() []host.Change {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]host.Change(nil), c.list...)
}

// wait returns the first change from index from on that reaches state to.
func (c *changes) wait(t testing.TB, from int, to host.State) (host.Change, int) {
	t.Helper()
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		for i := from; i < len(c.list); i++ {
			if c.list[i].To == to {
				ch := c.list[i]
				c.mu.Unlock()
				return ch, i + 1
			}
		}
		wake := c.ch
		c.mu.Unlock()
		select {
		case <-wake:
		case <-deadline.C:
			t.Fatalf("no change to %v after 20s; changes: %v", to, c.all())
		}
	}
}

// newModule creates a module for cfg, recording its changes, with a
// cleanup that shuts it down.
func newModule(t testing.TB, cfg host.Config) (*host.Module, *changes) {
	t.Helper()
	chs := newChanges()
	cfg.OnChange = chs.add
	m, err := host.NewModule(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return m, chs
}

// spawn creates and spawns a module, failing the test on error.
func spawn(t testing.TB, cfg host.Config) (*host.Module, *changes) {
	t.Helper()
	m, chs := newModule(t, cfg)
	if err := m.Spawn(t.Context()); err != nil {
		t.Fatalf("Spawn %s: %v", cfg.Name, err)
	}
	return m, chs
}
