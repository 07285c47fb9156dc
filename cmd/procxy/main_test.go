package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/procxy/procxy/internal/testproc"

	"go.uber.org/goleak"
)

// These tests build the procxy command and run it as a user would, with
// real workers: examples/echoworker and the Node.js reference worker.

var buildDir string

func TestMain(m *testing.M) {
	os.Setenv("GORACE", "atexit_sleep_ms=0") // race-built children exit without a pause
	dir, err := os.MkdirTemp("", "procxy-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	buildDir = dir
	goleak.VerifyTestMain(cleanup{m}) // the ipc tests run servers in this process
}

type cleanup struct{ m *testing.M }

func (c cleanup) Run() int {
	defer os.RemoveAll(buildDir)
	return c.m.Run()
}

// build builds a main package into buildDir once.
var build = sync.OnceValues(func() (map[string]string, error) {
	bins := map[string]string{}
	for name, pkg := range map[string]string{"procxy": ".", "echoworker": "github.com/procxy/procxy/examples/echoworker"} {
		exe := filepath.Join(buildDir, name)
		flags := []string{"build", "-o", exe}
		if raceEnabled && name == "procxy" {
			flags = append(flags, "-race")
		}
		// Stamp the commit, as a release build does, where git can tell it
		// (the environment may say -buildvcs=false).
		out, err := exec.Command("go", append(flags, "-buildvcs=true", pkg)...).CombinedOutput()
		if err != nil {
			out, err = exec.Command("go", append(flags, pkg)...).CombinedOutput()
		}
		if err != nil {
			return nil, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
		bins[name] = exe
	}
	return bins, nil
})

func binary(t *testing.T, name string) string {
	t.Helper()
	bins, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return bins[name]
}

func workers(t *testing.T) map[string][]string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH (%v): run ./scripts/test, which installs it", err)
	}
	if _, err := os.Stat("../../interop/node_modules/@procwire/client/package.json"); err != nil {
		t.Fatalf("interop/node_modules lacks @procwire/client (%v): run ./scripts/test", err)
	}
	script, err := filepath.Abs("../../interop/nodeworker/worker.mjs")
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]string{"go": {binary(t, "echoworker")}, "node": {node, script}}
}

type ran struct {
	stdout, stderr string
	code           int
}

// runProcxy runs the built command with stdin and returns what it printed.
func runProcxy(t *testing.T, stdin string, args ...string) ran {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), binary(t, "procxy"), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return ran{stdout.String(), stderr.String(), code}
}

func TestCommand(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		stdout string // a substring
		stderr string // the whole of stderr
	}{
		{[]string{"help"}, 0, "procxy <command> [flags]", ""},
		{[]string{"--help"}, 0, "Exit status: 0 success", ""},
		{[]string{"call", "-h"}, 0, "usage: procxy call [flags] METHOD [INPUT] -- WORKER COMMAND [ARGS...]", ""},
		{[]string{"bench", "--help"}, 0, "usage: procxy bench", ""},
		{[]string{"ipc", "--help"}, 0, "usage: procxy ipc <command>", ""},
		{[]string{"ipc", "pub", "-h"}, 0, "usage: procxy ipc pub [flags] SUBJECT [DATA]", ""},
		{[]string{"ipc", "sub"}, 2, "", "procxy: ipc sub: no subject given\n"},
		{[]string{"launch"}, 2, "", "procxy: unknown command \"launch\" (run \"procxy help\" for the list)\n"},
		{[]string{"call", "-x", "echo", "--", "w"}, 2, "", "procxy: call: flag provided but not defined: -x\n"},
		{[]string{"gen", "-type", "Nope"}, 1, "", "procxy: gen: no type Nope in package main\n"},
		{[]string{"demo"}, 0, "no child left", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := runProcxy(t, "", tt.args...)
			if r.code != tt.code || !strings.Contains(r.stdout, tt.stdout) || (tt.args[0] != "demo" && r.stderr != tt.stderr) {
				t.Errorf("procxy %s: exit %d, stdout %q, stderr %q; want exit %d, stdout with %q, stderr %q",
					strings.Join(tt.args, " "), r.code, r.stdout, r.stderr, tt.code, tt.stdout, tt.stderr)
			}
		})
	}
}

// TestVersion: procxy version prints the build information of the
// binary, as go version -m reads it: the module version and, in a build
// from a git clone, the commit.
func TestVersion(t *testing.T) {
	r := runProcxy(t, "", "version")
	info, err := exec.Command("go", "version", "-m", binary(t, "procxy")).Output()
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	version, lib := "", ""
	lines := strings.Split(string(info), "\n")
	for i, line := range lines {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[0] == "mod":
			version = f[2]
		case len(f) >= 3 && f[0] == "dep" && f[1] == "github.com/procxy/procxy":
			lib = f[2]
			// A replaced module is followed by a line "=> PATH VERSION".
			if i+1 < len(lines) {
				if r := strings.Fields(lines[i+1]); len(r) >= 2 && r[0] == "=>" {
					lib += " => " + strings.Join(r[1:], " ")
				}
			}
		case len(f) == 2 && f[0] == "build":
			if k, v, ok := strings.Cut(f[1], "="); ok {
				settings[k] = v
			}
		}
	}
	want := fmt.Sprintf("procxy %s\n  module    github.com/procxy/procxy/cmd/procxy\n  library   github.com/procxy/procxy %s\n", version, lib)
	if rev := settings["vcs.revision"]; rev != "" {
		mod := ""
		if settings["vcs.modified"] == "true" {
			mod = " (with uncommitted changes)"
		}
		want += fmt.Sprintf("  commit    %s%s\n  time      %s\n", rev, mod, settings["vcs.time"])
		if head, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil && strings.TrimSpace(string(head)) != rev {
			t.Errorf("the build says commit %s, git says %s", rev, head)
		}
	} else {
		t.Logf("this build has no VCS stamp (not a git clone, or a git worktree, which go build does not stamp)")
	}
	want += fmt.Sprintf("  go        %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if r.code != 0 || r.stdout != want {
		t.Errorf("procxy version: exit %d\n%s\nwant\n%s", r.code, r.stdout, want)
	}
}

// TestWorkers: the examples, as a user types them, against both
// workers.
func TestWorkers(t *testing.T) {
	for name, w := range workers(t) {
		t.Run(name, func(t *testing.T) {
			check := func(r ran, code int, stdout, stderr string) {
				t.Helper()
				if code == 2 {
					// No call reached the worker, which may see procxy's
					// $shutdown before it accepts the data connection, and
					// then say so on stderr (the worker package calls it an
					// extra connection): only procxy's own line counts.
					lines := strings.SplitAfter(r.stderr, "\n")
					r.stderr = strings.Join(lines[max(0, len(lines)-2):], "")
				}
				if r.code != code || r.stdout != stdout || r.stderr != stderr {
					t.Errorf("exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr, code, stdout, stderr)
				}
			}
			args := func(a ...string) []string { return append(append(a, "--"), w...) }
			check(runProcxy(t, "", args("call", "echo", `"hi"`)...), 0, "\"hi\"\n", "")
			check(runProcxy(t, `{"n": 2}`, args("stream", "count")...), 0, "{\"i\":0}\n{\"i\":1}\n", "")
			check(runProcxy(t, "", args("call", "fail", `{"message": "no"}`)...), 3, "", "procxy: fail failed in the worker: no\n")
			check(runProcxy(t, "", args("call", "ecoh", "1")...), 2, "",
				"procxy: call: the worker has no method \"ecoh\" (did you mean \"echo\"?); it has: echo, echoRaw, fail, count, slow, accept, notify, getenv, crash\n")
			r := runProcxy(t, "", args("list")...)
			if r.code != 0 || !strings.HasPrefix(r.stdout, "METHOD   KIND\necho     result\n") {
				t.Errorf("list: exit %d, %q", r.code, r.stdout)
			}
			r = runProcxy(t, "", args("bench", "-n", "200", "-c", "2", "echo", "1")...)
			if r.code != 0 || !strings.Contains(r.stdout, "Calls:         200 succeeded, 0 failed") {
				t.Errorf("bench: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// TestCtrlC: SIGINT during a call aborts it, stops the worker and exits
// with status 130.
func TestCtrlC(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), binary(t, "procxy"), "call", "-v", "slow", `{"ms": 600000}`, "--", binary(t, "echoworker"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	var lines []string
	pid := 0
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if m := regexp.MustCompile(`\(pid (\d+)\) ready in`).FindStringSubmatch(sc.Text()); m != nil {
			fmt.Sscan(m[1], &pid)
			cmd.Process.Signal(os.Interrupt)
		}
	}
	err = cmd.Wait()
	if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("procxy after SIGINT: %v, want exit status 130\n%s", err, strings.Join(lines, "\n"))
	}
	if last := lines[len(lines)-1]; last != "procxy: interrupted: slow was aborted in the worker" {
		t.Errorf("last line %q", last)
	}
	if pid == 0 {
		t.Fatalf("no worker pid in:\n%s", strings.Join(lines, "\n"))
	}
	// procxy reaped its worker before it exited.
	if testproc.Exists(pid) {
		t.Errorf("worker pid %d still exists after procxy exited", pid)
	}
}

// TestNotAWorker: a program that is not a Procwire worker gets one line
// and exit status 4, and is not left running.
func TestNotAWorker(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "pid")
	r := runProcxy(t, "", "list", "-init-timeout", "2s", "--", "sh", "-c", `echo $$ > "$0"; echo 'Listening on :8080'; exec sleep 600`, pidFile)
	want := `procxy: sh -c 'echo $$ > "$0"; echo '\''Listening on :8080'\''; exec sleep 600' ` + pidFile +
		` sent no Procwire $init line within 2s: it is not a Procwire worker, or it is stuck (its stdout ended with "Listening on :8080"); it was stopped` + "\n"
	if r.code != 4 || r.stdout != "" || r.stderr != want {
		t.Errorf("exit %d, stdout %q, stderr\n%s\nwant exit 4 and\n%s", r.code, r.stdout, r.stderr, want)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	if testproc.Exists(pid) {
		t.Errorf("the program (pid %d) still exists after procxy exited", pid)
	}
}
