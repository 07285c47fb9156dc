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

	"github.com/procxy/procxy/cmd/procxy/internal/cli"
	"github.com/procxy/procxy/host"
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
		{"help-three", []string{"help", "a", "b", "c"}, 2, "", "help takes at most a command and a subcommand"},
		{"help-no-subs", []string{"help", "list", "x"}, 2, "", "help: list has no subcommands"},
		{"help-ipc", []string{"help", "ipc"}, 0, "usage: procxy ipc <command>", ""},
		{"help-ipc-pub", []string{"help", "ipc", "pub"}, 0, "usage: procxy ipc pub [flags] SUBJECT [DATA]", ""},
		{"help-ipc-unknown", []string{"help", "ipc", "pbu"}, 2, "", `help: unknown command "ipc pbu" (did you mean "pub"?)`},
		{"ipc-help", []string{"ipc", "help", "sub"}, 0, "usage: procxy ipc sub [flags] SUBJECT", ""},
		{"ipc-no-command", []string{"ipc"}, 2, "", `ipc: no command given (run "procxy help ipc")`},
		{"ipc-unknown", []string{"ipc", "publish"}, 2, "", `ipc: unknown command "publish" (run "procxy help ipc" for the list)`},
		{"ipc-misspelt", []string{"ipc", "reqest"}, 2, "", `ipc: unknown command "reqest" (did you mean "request"?) (run "procxy help ipc" for the list)`},
		{"ipc-flag-first", []string{"ipc", "-server", "x", "pub"}, 2, "", `ipc: unknown flag -server: flags go after the command (run "procxy help ipc")`},
		{"ipc-pub-no-subject", []string{"ipc", "pub"}, 2, "", "ipc pub: no subject given"},
		{"ipc-pub-wildcard", []string{"ipc", "pub", "a.*", "x"}, 2, "", `ipc pub: invalid subject "a.*": wildcards (* and >) are for subscriptions`},
		{"ipc-pub-empty-token", []string{"ipc", "pub", "a..b", "x"}, 2, "", `ipc pub: invalid subject "a..b": it has an empty token`},
		{"ipc-pub-reserved", []string{"ipc", "pub", "$IPC.x", "x"}, 2, "", `ipc pub: cannot publish to "$IPC.x": subjects starting with $ are the library's`},
		{"ipc-pub-two-inputs", []string{"ipc", "pub", "a", "x", "y"}, 2, "", "ipc pub: one input at most after the subject, got 2 (quote the JSON)"},
		{"ipc-pub-count", []string{"ipc", "pub", "-count", "0", "a", "x"}, 2, "", "ipc pub: -count must be at least 1"},
		{"ipc-pub-header", []string{"ipc", "pub", "-H", "novalue", "a", "x"}, 2, "", `ipc pub: invalid value "novalue" for flag -H: want KEY:VALUE, got "novalue"`},
		{"ipc-pub-codec", []string{"ipc", "pub", "-codec", "xml", "a", "x"}, 2, "", `ipc pub: -codec "xml": want raw, json or msgpack`},
		{"ipc-pub-msgpack-input", []string{"ipc", "pub", "-codec", "msgpack", "a", "{x}"}, 2, "", "the input argument: at $ (line 1, column 2): invalid character 'x'"},
		{"ipc-sub-two", []string{"ipc", "sub", "a", "b"}, 2, "", `ipc sub: one subject only, got ["a" "b"]`},
		{"ipc-sub-gt", []string{"ipc", "sub", "a.>.b"}, 2, "", `ipc sub: invalid subject "a.>.b": ">" must be the last token`},
		{"ipc-sub-json-raw", []string{"ipc", "sub", "-json", "-raw", "a"}, 2, "", "ipc sub: -json and -raw: give one"},
		{"ipc-sub-queue", []string{"ipc", "sub", "-queue", "a b", "a"}, 2, "", `ipc sub: invalid queue group "a b": a name without spaces or wildcards`},
		{"ipc-sub-both", []string{"ipc", "sub", "-server", "x", "-nats", "nats://y", "a"}, 2, "", "ipc sub: -server and -nats: give one"},
		{"ipc-sub-nats-empty", []string{"ipc", "sub", "-nats", "", "a"}, 2, "", "ipc sub: -nats needs a URL (an embedded nats-server is for procxy ipc serve -nats)"},
		{"ipc-request-timeout", []string{"ipc", "request", "-timeout", "-1s", "a"}, 2, "", "ipc request: -timeout must not be negative"},
		{"ipc-request-tls", []string{"ipc", "request", "-tls-cert", "c.pem", "a", "x"}, 2, "", "ipc request: -tls-cert and -tls-key go together"},
		{"ipc-request-ca", []string{"ipc", "request", "-tls-ca", "/no/ca.pem", "a", "x"}, 2, "", "ipc request: -tls-ca: open /no/ca.pem: no such file or directory"},
		{"ipc-stream-no-subject", []string{"ipc", "stream"}, 2, "", "ipc stream: no subject given"},
		{"ipc-reply-both", []string{"ipc", "reply", "a", "x", "--", "cat"}, 2, "", "ipc reply: a RESPONSE or a command after --, not both"},
		{"ipc-reply-c", []string{"ipc", "reply", "-c", "0", "a"}, 2, "", "ipc reply: -c must be at least 1"},
		{"ipc-serve-arg", []string{"ipc", "serve", "tcp://x:1"}, 2, "", `ipc serve: unexpected argument "tcp://x:1" (the address is -server ADDR)`},
		{"ipc-serve-both", []string{"ipc", "serve", "-server", "a", "-nats", "nats://b"}, 2, "", "ipc serve: -server and -nats: give one"},
		{"ipc-serve-size", []string{"ipc", "serve", "-max-payload", "lots"}, 2, "", `ipc serve: invalid value "lots" for flag -max-payload: want a positive size such as 1048576, 512K or 8M`},
		{"ipc-serve-nats-url", []string{"ipc", "serve", "-nats", "http://x:1"}, 2, "", `ipc serve: -nats "http://x:1": want nats://host:port`},
		{"ipc-serve-users", []string{"ipc", "serve", "-users", "/no/users.json"}, 2, "", "ipc serve: -users: open /no/users.json: no such file or directory"},
		{"bench-no-worker", []string{"bench", "echo"}, 2, "", "bench: no worker command: give it after --, as in procxy bench ... -- ./worker (or an ipc server with -server or -nats)"},
		{"bench-ipc-and-worker", []string{"bench", "-server", "x", "svc", "--", "w"}, 2, "", "bench: -server and -nats bench an ipc subject: no worker command after --"},
		{"bench-ipc-no-subject", []string{"bench", "-nats", "nats://x"}, 2, "", "bench: no subject given"},
		{"bench-stream-worker", []string{"bench", "-stream", "echo", "--", "w"}, 2, "", "bench: -stream and -H are for ipc subjects (-server or -nats)"},
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
	for _, c := range []string{"list", "describe", "call", "stream", "bench", "gen", "demo", "version", "help",
		"ipc", "ipc serve", "ipc pub", "ipc sub", "ipc request", "ipc stream", "ipc reply"} {
		for _, h := range []string{"-h", "-help", "--help"} {
			args := append(strings.Fields(c), h)
			switch c {
			case "call", "bench": // help wins wherever it is
				args = []string{c, "echo", h, "--", "./w"}
			case "ipc pub", "ipc reply":
				args = append(strings.Fields(c), "subject", h, "data")
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
		"type CalcProxy struct {\n\t*procxy.Proxy[Calc]\n",
		"func CalcProxyOn(t procxy.Target[Calc]) *CalcProxy {",
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
// cmd/procxy's test checks a real build, with the library's version and
// the commit (a test binary records no dependencies).
func TestVersion(t *testing.T) {
	want := fmt.Sprintf("procxy (devel)\n  module    github.com/procxy/procxy/cmd/procxy\n  library   github.com/procxy/procxy (unknown)\n  go        %s %s/%s\n",
		runtime.Version(), runtime.GOOS, runtime.GOARCH)
	run(t, "", workerCmd{}, "version").check(t, 0, want)
	run(t, "", workerCmd{}, "--version").check(t, 0, want)
	r := run(t, "", workerCmd{}, "version", "-json")
	var v struct {
		Module, Version, Library, Go, Platform string
		LibraryVersion                         string `json:"library_version"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || v.Module != "github.com/procxy/procxy/cmd/procxy" || v.Version != "(devel)" ||
		v.Library != "github.com/procxy/procxy" || v.LibraryVersion == "" || v.Go != runtime.Version() {
		t.Errorf("version -json: %q, %v", r.stdout, err)
	}
}
