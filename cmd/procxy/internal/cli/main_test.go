package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/cmd/procxy/internal/cli"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/worker"
)

// envBadWorker makes this test binary a program that is not a good
// Procwire worker, in one of the modes below; envPidFile names a file it
// writes its pid (and its child's) to.
const (
	envBadWorker = "PROCXY_CLI_BAD_WORKER"
	envPidFile   = "PROCXY_CLI_PIDFILE"
)

var buildDir string // holds the echoworker built for this run

func TestMain(m *testing.M) {
	procxy.Main() // the demo's children are this test binary, re-run
	if mode := os.Getenv(envBadWorker); mode != "" {
		os.Exit(badWorker(mode))
	}
	os.Setenv("GORACE", "atexit_sleep_ms=0") // race-built children exit without a pause
	dir, err := os.MkdirTemp("", "cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cli tests:", err)
		os.Exit(2)
	}
	buildDir = dir
	goleak.VerifyTestMain(cleanup{m})
}

type cleanup struct{ m *testing.M }

func (c cleanup) Run() int {
	defer os.RemoveAll(buildDir)
	return c.m.Run()
}

// badWorker runs a bad worker and returns its exit status.
func badWorker(mode string) int {
	if f := os.Getenv(envPidFile); f != "" {
		pids := fmt.Sprint(os.Getpid())
		if mode == "silent" || mode == "garbage" {
			// A child in the worker's process group, which must die with it.
			sleep := exec.Command("sleep", "600")
			if err := sleep.Start(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 9
			}
			pids += " " + fmt.Sprint(sleep.Process.Pid)
		}
		if err := os.WriteFile(f, []byte(pids), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 9
		}
	}
	switch mode {
	case "exit": // fails at once, saying why on stderr
		fmt.Fprintln(os.Stderr, "panic: cannot open config.yaml")
		return 1
	case "quiet-exit": // exits at once, printing nothing
		return 0
	case "garbage-exit": // prints something else than $init, and exits
		fmt.Println("usage: tool [options] file...")
		return 2
	case "garbage": // prints something else than $init, and waits
		fmt.Println("Listening on http://localhost:8080")
	case "silent": // prints nothing, and waits
	case "badinit": // a $init line that is not one
		fmt.Println(`{"jsonrpc":"2.0","method":"$init","params":{"pipe":"/nowhere"}}`)
	case "worker": // a real worker whose methods misbehave
		return testWorker()
	case "initerror": // reports an init error
		fmt.Println(`{"jsonrpc":"2.0","method":"$error","params":{"message":"cannot load model"}}`)
		return 1
	default:
		fmt.Fprintln(os.Stderr, "unknown bad worker mode", mode)
		return 9
	}
	select {} // until killed
}

// testWorker is a Procwire worker with methods for the tests that the
// interop workers lack:
//
//	die    result  writes "dying" on stderr and exits with status 5
//	block  result  emits "started", then waits until aborted
//	bytes  result  returns 3 bytes of the raw codec, whatever the request
func testWorker() int {
	w := worker.New(worker.Options{})
	started := worker.Event[string](w, "started")
	worker.Result(w, "die", func(context.Context, any) (any, error) {
		fmt.Fprintln(os.Stderr, "dying")
		os.Exit(5)
		return nil, nil
	})
	worker.Result(w, "block", func(ctx context.Context, in any) (any, error) {
		if err := started.Emit(ctx, "block"); err != nil {
			return nil, err
		}
		<-ctx.Done()
		return nil, ctx.Err()
	})
	worker.Result(w, "bytes", func(context.Context, []byte) ([]byte, error) { return []byte{0, 0xff, 'x'}, nil },
		worker.WithCodec(codec.Raw))
	if err := w.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// ---- workers ------------------------------------------------------------

var buildEcho = sync.OnceValues(func() (string, error) {
	exe := filepath.Join(buildDir, "echoworker")
	out, err := exec.Command("go", "build", "-o", exe, "github.com/procxy/procxy/examples/echoworker").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build examples/echoworker: %v\n%s", err, out)
	}
	return exe, nil
})

// workerCmd is a worker command line for after "--".
type workerCmd struct {
	name string
	argv []string
}

func goWorker(t testing.TB) workerCmd {
	t.Helper()
	exe, err := buildEcho()
	if err != nil {
		t.Fatal(err)
	}
	return workerCmd{"go", []string{exe}}
}

// nodeWorker is the Node.js reference worker on the pinned @procwire
// packages that ./scripts/test installs.
func nodeWorker(t testing.TB) workerCmd {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (%v): run ./scripts/test, which installs it", err)
	}
	if _, err := os.Stat("../../../../interop/node_modules/@procwire/client/package.json"); err != nil {
		t.Fatalf("interop/node_modules lacks @procwire/client (%v): run ./scripts/test (npm ci in interop/)", err)
	}
	script, err := filepath.Abs("../../../../interop/nodeworker/worker.mjs")
	if err != nil {
		t.Fatal(err)
	}
	return workerCmd{"node", []string{node, script}}
}

// bothWorkers are examples/echoworker and the Node.js reference worker:
// the same methods, ids and events.
func bothWorkers(t testing.TB) []workerCmd { return []workerCmd{goWorker(t), nodeWorker(t)} }

// self is this test binary as a worker command; procxy's -env flag
// picks what it does (envBadWorker).
func self() workerCmd { return workerCmd{"self", []string{os.Args[0]}} }

// ---- running procxy ---------------------------------------------------

type result struct {
	stdout, stderr string
	err            error
	code           int
}

// run runs procxy with args, then "--" and w's command when w has one,
// with stdin as its input.
func run(t testing.TB, stdin string, w workerCmd, args ...string) result {
	t.Helper()
	if w.argv != nil {
		args = append(append(args, "--"), w.argv...)
	}
	var stdout, stderr bytes.Buffer
	var in io.Reader = strings.NewReader(stdin)
	err := cli.Run(t.Context(), args, in, &stdout, &stderr)
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err, code: cli.ExitCode(err)}
}

// check fails the test unless r has the exit code and, exactly, stdout.
func (r result) check(t testing.TB, code int, stdout string) {
	t.Helper()
	if r.code != code || r.stdout != stdout {
		t.Errorf("exit %d (err %v), stdout:\n%s\nstderr:\n%s\nwant exit %d, stdout:\n%s", r.code, r.err, r.stdout, r.stderr, code, stdout)
	}
}

// errLine is the line procxy prints for an error, as main does.
func (r result) errLine() string {
	if r.err == nil {
		return ""
	}
	return "procxy: " + r.err.Error()
}
