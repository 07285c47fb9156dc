package nodeparent_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/procxy/procxy/internal/testproc"

	"go.uber.org/goleak"
)

// workerBin is the echoworker built once for the whole run by TestMain;
// buildErr says why it could not be built.
var (
	workerBin string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "echoworker-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	workerBin, buildErr = buildWorker(dir)
	code := m.Run()
	if code == 0 {
		if pids := liveWorkers(workerBin); len(pids) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: echoworker processes outlived the tests: %v\n", pids)
			for _, pid := range pids {
				testproc.Kill(pid)
			}
			code = 1
		}
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: leaked goroutines:", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// buildWorker builds examples/echoworker into dir. It is built without the
// race detector even under go test -race: these tests hold the worker to a
// 50 ms / 500 ms heartbeat under load on shared CI cores, and the detector's
// CPU cost would turn machine stalls into missed pongs. The worker's code
// runs under -race in package worker's own tests.
func buildWorker(dir string) (string, error) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "echoworker")
	args := []string{"build", "-o", bin, "github.com/procxy/procxy/examples/echoworker"}
	cmd := exec.Command(goTool, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out.Bytes())
	}
	return bin, nil
}

// needWorker fails the test if the echoworker could not be built.
func needWorker(t *testing.T) string {
	t.Helper()
	if buildErr != nil {
		t.Fatalf("cannot build the echoworker: %v", buildErr)
	}
	return workerBin
}

// needNode fails (never skips) the test if node or the pinned npm packages
// are missing, and returns the path of node.
func needNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not on PATH; the interop tests need Node.js and the pinned npm packages: run ./scripts/test")
	}
	for _, pkg := range []string{"@procwire/core", "@procwire/codecs"} {
		if _, err := os.Stat(filepath.Join("..", "node_modules", pkg, "package.json")); err != nil {
			t.Fatalf("interop/node_modules/%s is missing (%v): run ./scripts/test, which runs npm ci in interop/", pkg, err)
		}
	}
	return node
}

// liveWorkers returns the pids of running (not zombie) processes executing
// bin. It only works on Linux; elsewhere it returns nil.
func liveWorkers(bin string) []int {
	if bin == "" || runtime.GOOS != "linux" {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe")); err == nil && exe == bin && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// alive reports whether pid exists and is not a zombie (an orphaned zombie
// may wait for a reaper that a container's init never runs).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}
