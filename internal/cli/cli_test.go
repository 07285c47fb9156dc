package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/internal/cli"
	"github.com/procxy/procxy/internal/gen"
	"github.com/procxy/procxy/rpc"
)

// TestUsage: -h and --help at every level print the usage on stdout and
// succeed; a usage error is exit status 2 and one line that says what
// was wrong, with nothing else on stderr.
func TestUsage(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // a substring stdout must have
		err    string // the whole error message
	}{
		{"no-command", nil, 2, "", "no command given"},
		{"unknown", []string{"launch"}, 2, "", `unknown command "launch" (run "procxy help" for the list)`},
		{"misspelt", []string{"lsit"}, 2, "", `unknown command "lsit" (did you mean "list"?) (run "procxy help" for the list)`},
		{"unknown-flag", []string{"-x"}, 2, "", `unknown flag -x: flags go after the command (run "procxy help")`},
		{"help", []string{"help"}, 0, "\tgen        write typed stubs", ""},
		{"-h", []string{"-h"}, 0, "\tbench      load-test a worker's method", ""},
		{"--help", []string{"--help"}, 0, "Exit status: 0 success", ""},
		{"help-gen", []string{"help", "gen"}, 0, "usage: procxy gen -type T", ""},
		{"help-call", []string{"help", "call"}, 0, "usage: procxy call [flags] METHOD [INPUT] -- WORKER COMMAND [ARGS...]", ""},
		{"help-unknown", []string{"help", "launch"}, 2, "", `help: unknown command "launch"`},
		{"help-two", []string{"help", "a", "b"}, 2, "", "help takes at most one command"},
		{"gen-h", []string{"gen", "-h"}, 0, "-type T", ""},
		{"gen-no-type", []string{"gen"}, 2, "", "gen: -type is required"},
		{"gen-bad-flag", []string{"gen", "-x"}, 2, "", "gen: flag provided but not defined: -x"},
		{"gen-two-dirs", []string{"gen", "-type", "T", "a", "b"}, 2, "", `gen: one package directory at most, got ["a" "b"]`},
		{"demo-args", []string{"demo", "now"}, 2, "", "demo takes no arguments"},
		{"version-args", []string{"version", "x"}, 2, "", "version takes no arguments"},
		{"no-worker", []string{"call", "echo", "1"}, 2, "", "call: no worker command: give it after --, as in procxy call ... -- ./worker"},
		{"no-method", []string{"call", "--", "w"}, 2, "", "call: no method given (procxy list -- w shows them)"},
		{"list-arg", []string{"list", "x", "--", "w"}, 2, "", `list: unexpected argument "x" before --`},
		{"bad-codec", []string{"call", "-codec", "xml", "echo", "1", "--", "w"}, 2, "", `-codec "xml": want msgpack, json or raw`},
		{"bad-duration", []string{"bench", "-z", "soon", "echo", "--", "w"}, 2, "", `bench: invalid value "soon" for flag -z: parse error`},
		{"bench-c", []string{"bench", "-c", "0", "echo", "--", "w"}, 2, "", "bench: -c must be at least 1"},
		{"bench-progress", []string{"bench", "-progress", "dots", "echo", "--", "w"}, 2, "", `bench: -progress "dots": want auto, bar, lines or none`},
		{"input-file", []string{"call", "echo", "@/no/such/file", "--", "w"}, 2, "", "call: input file: open /no/such/file: no such file or directory"},
	}
	for _, c := range []string{"list", "describe", "call", "stream", "bench", "gen", "demo", "version", "help"} {
		for _, h := range []string{"-h", "-help", "--help"} {
			args := []string{c, h}
			if c == "call" || c == "bench" { // help wins wherever it is
				args = []string{c, "echo", h, "--", "./w"}
			}
			tests = append(tests, struct {
				name   string
				args   []string
				code   int
				stdout string
				err    string
			}{c + h, args, 0, "usage: procxy " + c, ""})
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := cli.Run(t.Context(), tt.args, nil, &stdout, &stderr)
			if got := cli.ExitCode(err); got != tt.code {
				t.Errorf("exit code %d, want %d (err %v)", got, tt.code, err)
			}
			if got := fmt.Sprint(err); tt.err != "" && got != tt.err {
				t.Errorf("error %q, want %q", got, tt.err)
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout %q, want it to contain %q", stdout.String(), tt.stdout)
			}
			if tt.code == 2 && tt.args != nil && stderr.Len() > 0 {
				t.Errorf("a usage error printed %q on stderr; want nothing but the error line", stderr.String())
			}
			if strings.Contains(fmt.Sprint(err), "\n") {
				t.Errorf("error %q has more than one line", err)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	if got := cli.ExitCode(nil); got != 0 {
		t.Errorf("ExitCode(nil) = %d, want 0", got)
	}
	if got := cli.ExitCode(errors.New("boom")); got != 1 {
		t.Errorf("ExitCode(error) = %d, want 1", got)
	}
	if got := cli.ExitCode(fmt.Errorf("call: %w", &rpc.RemoteError{Message: "no"})); got != cli.ExitRemote {
		t.Errorf("ExitCode(remote error) = %d, want %d", got, cli.ExitRemote)
	}
	if got := cli.ExitCode(fmt.Errorf("x: %w", &host.ExitError{Code: 3})); got != cli.ExitWorker {
		t.Errorf("ExitCode(exit error) = %d, want %d", got, cli.ExitWorker)
	}
	if got := cli.ExitCode(fmt.Errorf("x: %w", context.DeadlineExceeded)); got != cli.ExitTimeout {
		t.Errorf("ExitCode(deadline) = %d, want %d", got, cli.ExitTimeout)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := cli.Run(ctx, []string{"call", "echo", "1", "--", "./no-such-worker"}, nil, io.Discard, io.Discard); cli.ExitCode(err) != cli.ExitInterrupted {
		t.Errorf("Run with a cancelled ctx: %v (exit %d), want exit %d", err, cli.ExitCode(err), cli.ExitInterrupted)
	}
}

const calcSource = `package calc

import "context"

type Calc struct{}

func (*Calc) Add(a, b int) int { return a + b }

func (*Calc) Wait(ctx context.Context) error { return nil }
`

func TestGen(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "calc.go"), []byte(calcSource), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := cli.Run(t.Context(), []string{"gen", "-type", "Calc", dir}, nil, &stdout, &stderr); err != nil {
		t.Fatalf("gen: %v\n%s", err, stderr.String())
	}
	out := filepath.Join(dir, "calc_procxy.go")
	src, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		gen.Header,
		"type CalcProxy struct{ *procxy.Proxy[Calc] }",
		"func (p *CalcProxy) Add(ctx context.Context, a int, b int) (int, error) {",
		"func (p *CalcProxy) Wait(ctx context.Context) error {",
	} {
		if !bytes.Contains(src, []byte(want)) {
			t.Errorf("%s lacks %q:\n%s", out, want, src)
		}
	}
	if stdout.Len() > 0 || stderr.Len() > 0 {
		t.Errorf("gen printed %q and %q; want nothing", stdout.String(), stderr.String())
	}

	// Previous output is not part of the input, even when it is stale and
	// the new output goes elsewhere.
	stale := strings.Replace(string(src), "return procxy.Call[int]", "return undefined[int]", 1)
	if err := os.WriteFile(out, []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if err := cli.Run(t.Context(), []string{"gen", "-type", "Calc", "-o", "-", dir}, nil, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(stdout.Bytes(), src) {
		t.Errorf("gen -o - printed\n%s\nwant\n%s", stdout.Bytes(), src)
	}
}

// TestVersion: version and --version print the same build information;
// cmd/procxy's test checks the commit stamped into a real build.
func TestVersion(t *testing.T) {
	want := fmt.Sprintf("procxy (devel)\n  module    github.com/procxy/procxy\n  go        %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	run(t, "", workerCmd{}, "version").check(t, 0, want)
	run(t, "", workerCmd{}, "--version").check(t, 0, want)
	r := run(t, "", workerCmd{}, "version", "-json")
	var v struct{ Module, Version, Go, Platform string }
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Module != "github.com/procxy/procxy" || v.Version != "(devel)" || v.Go != runtime.Version() {
		t.Errorf("version -json: %q, %v", r.stdout, err)
	}
}
