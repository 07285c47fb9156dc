package cli_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/procxy/procxy/internal/testproc"

	"github.com/procxy/procxy/cmd/procxy/internal/cli"
)

// The tests in this file run procxy's commands as a user would, through
// cli.Run (what main calls), against real worker processes: the Go
// examples/echoworker and the Node.js reference worker on @procwire/client,
// which have the same methods. They compare the whole output.

const listOut = `METHOD   KIND
echo     result
echoRaw  result
fail     result
count    stream
slow     result
accept   ack
notify   none
getenv   result
crash    none

EVENT
progress
notified
`

const listJSONOut = `{
  "methods": [
    {
      "name": "echo",
      "id": 1,
      "kind": "result"
    },
    {
      "name": "echoRaw",
      "id": 2,
      "kind": "result"
    },
    {
      "name": "fail",
      "id": 3,
      "kind": "result"
    },
    {
      "name": "count",
      "id": 4,
      "kind": "stream"
    },
    {
      "name": "slow",
      "id": 5,
      "kind": "result"
    },
    {
      "name": "accept",
      "id": 6,
      "kind": "ack"
    },
    {
      "name": "notify",
      "id": 7,
      "kind": "none"
    },
    {
      "name": "getenv",
      "id": 8,
      "kind": "result"
    },
    {
      "name": "crash",
      "id": 9,
      "kind": "none"
    }
  ],
  "events": [
    {
      "name": "progress",
      "id": 1
    },
    {
      "name": "notified",
      "id": 2
    }
  ]
}
`

func TestList(t *testing.T) {
	for _, w := range bothWorkers(t) {
		t.Run(w.name, func(t *testing.T) {
			run(t, "", w, "list").check(t, 0, listOut)
			run(t, "", w, "list", "-json").check(t, 0, listJSONOut)
		})
	}
}

const describeOut = `METHOD   ID  KIND    TIMEOUT  CALL WITH
echo     1   result  none     procxy call echo
echoRaw  2   result  none     procxy call echoRaw
fail     3   result  none     procxy call fail
count    4   stream  -        procxy stream count
slow     5   result  none     procxy call slow
accept   6   ack     none     procxy call accept
notify   7   none    -        procxy call notify
getenv   8   result  none     procxy call getenv
crash    9   none    -        procxy call crash

EVENT     ID
progress  1
notified  2
`

func TestDescribe(t *testing.T) {
	for _, w := range bothWorkers(t) {
		t.Run(w.name, func(t *testing.T) {
			r := run(t, "", w, "describe")
			head, rest, _ := strings.Cut(r.stdout, "\n\n")
			re := regexp.MustCompile(`^worker (.+): pid \d+, ready in [0-9.]+[µm]?s, 9 methods, 2 events$`)
			if m := re.FindStringSubmatch(head); m == nil || m[1] != strings.Join(w.argv, " ") {
				t.Errorf("first line %q, want it to match %s with the worker command", head, re)
			}
			r.stdout = rest
			r.check(t, 0, describeOut)

			cmd := strings.Join(w.argv, " ")
			run(t, "", w, "describe", "count").check(t, 0, `method count
  id       4
  kind     stream: answers with a stream of chunks, then an end
  timeout  -
  call     procxy stream count INPUT -- `+cmd+"\n")
			run(t, "", w, "describe", "accept").check(t, 0, `method accept
  id       6
  kind     ack: answers once with an acknowledgement, which may carry data
  timeout  none
  call     procxy call accept INPUT -- `+cmd+"\n")
			run(t, "", w, "describe", "progress").check(t, 0, `event progress
  id       1
  shown    by procxy call and procxy stream as it arrives
`)
			run(t, "", w, "describe", "-json", "notify").check(t, 0, `{
  "method": {
    "name": "notify",
    "id": 7,
    "kind": "none"
  }
}
`)
			r = run(t, "", w, "describe", "ecoh")
			r.check(t, 2, "")
			if want := `procxy: describe: the worker has no method or event "ecoh" (did you mean "echo"?)`; r.errLine() != want {
				t.Errorf("got %q, want %q", r.errLine(), want)
			}
		})
	}
}

// callCase is one procxy call or stream and what it must print.
type callCase struct {
	name   string
	stdin  string
	args   []string
	code   int
	stdout string
	err    string // the error line, when the command fails
	stderr string // a substring of stderr
}

func runCases(t *testing.T, w workerCmd, cases []callCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.stdin, w, tc.args...)
			r.check(t, tc.code, tc.stdout)
			if r.errLine() != tc.err {
				t.Errorf("error line %q, want %q", r.errLine(), tc.err)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q, want it to contain %q", r.stderr, tc.stderr)
			}
		})
	}
}

func TestCall(t *testing.T) {
	dir := t.TempDir()
	jsonFile := filepath.Join(dir, "in.json")
	rawFile := filepath.Join(dir, "in.bin")
	if err := os.WriteFile(jsonFile, []byte(`{"from": [1, 2]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	binary := []byte{0, 1, 2, 0xfe, 0xff, '\n'}
	if err := os.WriteFile(rawFile, binary, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, w := range bothWorkers(t) {
		goName := map[string]string{"go": `,"name":"*errors.errorString"`}[w.name]
		t.Run(w.name, func(t *testing.T) {
			var only []callCase
			switch w.name {
			case "node": // JavaScript objects keep the order of their keys
				only = append(only, callCase{name: "key order", args: []string{"call", "-json", "echo", `{"z": 1, "a": {"y": 2, "b": 3}, "m": []}`},
					stdout: `{"result":{"z":1,"a":{"y":2,"b":3},"m":[]}}` + "\n"})
			case "go": // Go has 64-bit integers
				only = append(only, callCase{name: "uint64", args: []string{"call", "echo", `[18446744073709551615, -9223372036854775808]`},
					stdout: "[\n  18446744073709551615,\n  -9223372036854775808\n]\n"})
			}
			runCases(t, w, only)
			runCases(t, w, []callCase{
				{name: "echo", args: []string{"call", "echo", `"hi"`}, stdout: "\"hi\"\n"},
				// Single-member objects: the Go worker's echo decodes into a
				// Go map, which keeps no order.
				{name: "values", args: []string{"call", "echo",
					`[-1, 1.5, 9007199254740991, null, true, {"b": {"$bytes": "AQID"}}, {"$date": "2024-06-15T12:30:45.123Z"}, "zażółć <&>", {"$float": "NaN"}]`},
					stdout: `[
  -1,
  1.5,
  9007199254740991,
  null,
  true,
  {
    "b": {
      "$bytes": "AQID"
    }
  },
  {
    "$date": "2024-06-15T12:30:45.123Z"
  },
  "zażółć <&>",
  {
    "$float": "NaN"
  }
]
`},
				{name: "negative number", args: []string{"call", "echo", "-42"}, stdout: "-42\n"},
				{name: "stdin", stdin: `[1, "two"]`, args: []string{"call", "echo"}, stdout: "[\n  1,\n  \"two\"\n]\n"},
				{name: "empty stdin is null", args: []string{"call", "echo"}, stdout: "null\n"},
				{name: "@file", args: []string{"call", "-json", "echo", "@" + jsonFile}, stdout: `{"result":{"from":[1,2]}}` + "\n"},
				{name: "@-", stdin: `"from stdin"`, args: []string{"call", "echo", "@-"}, stdout: "\"from stdin\"\n"},
				{name: "raw", args: []string{"call", "-codec", "raw", "echoRaw", "hello"}, stdout: "hello"},
				{name: "raw file", args: []string{"call", "-codec", "raw", "echoRaw", "@" + rawFile}, stdout: string(binary)},
				{name: "raw json", args: []string{"call", "-codec", "raw", "-json", "echoRaw", "@" + rawFile}, stdout: `{"result":{"$bytes":"AAEC/v8K"}}` + "\n"},
				{name: "ack", args: []string{"call", "accept", "{}"}, stdout: "{\n  \"accepted\": true\n}\n"},
				{name: "ack json", args: []string{"call", "-json", "accept", "{}"}, stdout: `{"ack":{"accepted":true}}` + "\n"},
				{name: "events", args: []string{"call", "-events", "1", "notify", `{"x": [1, {"$bytes": "AQID"}]}`},
					stderr: `[event notified] {"x":[1,{"$bytes":"AQID"}]}` + "\n"},
				{name: "events json", args: []string{"call", "-json", "-events", "1", "notify", `"ping"`},
					stdout: `{"sent":true}` + "\n" + `{"event":"notified","data":"ping"}` + "\n"},
				{name: "env", args: []string{"call", "-env", "PROCXY_CLI_TEST_VAR=bar", "getenv", `{"name": "PROCXY_CLI_TEST_VAR"}`}, stdout: "\"bar\"\n"},
				{name: "remote error", args: []string{"call", "fail", `{"message": "no"}`}, code: cli.ExitRemote,
					err: "procxy: fail failed in the worker: no"},
				{name: "remote error json", args: []string{"call", "-json", "fail", `{"message": "no"}`}, code: cli.ExitRemote,
					stdout: `{"error":{"message":"no"` + goName + `}}` + "\n", err: "procxy: fail failed in the worker: no"},
				{name: "timeout", args: []string{"call", "-timeout", "50ms", "slow", `{"ms": 60000}`}, code: cli.ExitTimeout,
					err: "procxy: slow did not finish within -timeout 50ms; it was aborted in the worker"},
				{name: "timeout json", args: []string{"call", "-json", "-timeout", "50ms", "slow", `{"ms": 60000}`}, code: cli.ExitTimeout,
					stdout: `{"error":{"message":"slow did not finish within -timeout 50ms; it was aborted in the worker","reason":"timeout"}}` + "\n",
					err:    "procxy: slow did not finish within -timeout 50ms; it was aborted in the worker"},
				{name: "unknown method", args: []string{"call", "ecoh", "1"}, code: cli.ExitUsage,
					err: `procxy: call: the worker has no method "ecoh" (did you mean "echo"?); it has: echo, echoRaw, fail, count, slow, accept, notify, getenv, crash`},
				{name: "stream method", args: []string{"call", "count", "{}"}, code: cli.ExitUsage,
					err: `procxy: call: "count" is a stream method: use procxy stream count`},
				{name: "bad JSON", args: []string{"call", "echo", "{\"a\": [1, 2,\n  }"}, code: cli.ExitUsage,
					err: `procxy: the input argument: at $.a[2] (line 2, column 3): invalid character '}' looking for beginning of value`},
				{name: "bad $bytes", args: []string{"call", "echo", `{"a": {"b": {"$bytes": "AQ!D"}}}`}, code: cli.ExitUsage,
					err: `procxy: the input argument: at $.a.b.$bytes (line 1, column 13): not valid base64: illegal base64 data at input byte 2`},
				{name: "huge integer", args: []string{"call", "echo", `[1, 123456789012345678901]`}, code: cli.ExitUsage,
					err: `procxy: the input argument: at $[1] (line 1, column 5): the integer 123456789012345678901 does not fit in 64 bits (msgpack's limit); write it with an exponent, as 123456789012345678901e0, to send a float`},
				{name: "not JSON", args: []string{"call", "echo", "hello"}, code: cli.ExitUsage,
					err: `procxy: the input argument: at $ (line 1, column 1): invalid character 'h' looking for beginning of value (JSON strings need quotes: '"hello"')`},
				{name: "answer in another codec", args: []string{"call", "-request-codec", "raw", "echoRaw", "hello"}, code: cli.ExitFailure,
					err: `procxy: the answer of echoRaw is not msgpack (codec: msgpack: 4 trailing bytes after the value at offset 1; it begins "hello"); if the method uses another codec, pass -response-codec json or raw`},
				{name: "two inputs", args: []string{"call", "echo", "1", "2"}, code: cli.ExitUsage,
					err: `procxy: call: one input at most after the method, got 2 (quote the JSON)`},
			})
		})
	}
}

func TestStream(t *testing.T) {
	for _, w := range bothWorkers(t) {
		t.Run(w.name, func(t *testing.T) {
			runCases(t, w, []callCase{
				{name: "count", args: []string{"stream", "count", `{"n": 3}`}, stdout: "{\"i\":0}\n{\"i\":1}\n{\"i\":2}\n"},
				{name: "empty", args: []string{"stream", "count", `{"n": 0}`}, stdout: ""},
				{name: "json", args: []string{"stream", "-json", "count", `{"n": 2}`},
					stdout: `{"chunk":{"i":0}}` + "\n" + `{"chunk":{"i":1}}` + "\n" + `{"end":true,"chunks":2}` + "\n"},
				{name: "result method", args: []string{"stream", "echo", "1"}, code: cli.ExitUsage,
					err: `procxy: stream: "echo" is a result method: use procxy call echo`},
			})
			// A stream that does not end in time is aborted in the worker.
			r := run(t, "", w, "stream", "-timeout", "100ms", "count", `{"n": 1000000000}`)
			if want := "procxy: count did not finish within -timeout 100ms; it was aborted in the worker"; r.code != cli.ExitTimeout || r.errLine() != want {
				t.Errorf("endless stream: exit %d, %q; want exit 5, %q", r.code, r.errLine(), want)
			}
			if !strings.HasPrefix(r.stdout, "{\"i\":0}\n{\"i\":1}\n") {
				t.Errorf("endless stream printed %.40q…, want its chunks", r.stdout)
			}
		})
	}
}

// TestCallFailures: a worker that dies during a call, and answers that
// are raw bytes, from a worker of the tests' own (this test binary).
func TestCallFailures(t *testing.T) {
	w := self()
	env := []string{"-env", envBadWorker + "=worker"}
	r := run(t, "", w, append([]string{"call"}, append(env, "die", "null")...)...)
	re := regexp.MustCompile(`^procxy: the worker \(pid \d+\) exited with status 5 during die; its stderr said "dying"$`)
	if r.code != cli.ExitWorker || !re.MatchString(r.errLine()) {
		t.Errorf("die: exit %d, %q; want exit 4 and a line matching %s", r.code, r.errLine(), re)
	}
	r = run(t, "", w, append([]string{"call", "-codec", "raw"}, append(env, "bytes")...)...)
	r.check(t, 0, "\x00\xffx")
}

// TestInterrupt: cancelling Run's ctx (Ctrl-C in main) during a call
// aborts it, stops the worker and exits with 130.
func TestInterrupt(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stderr := &watchWriter{match: regexp.MustCompile(`\[event started\]`), then: cancel}
	var stdout strings.Builder
	args := []string{"call", "-v", "-env", envBadWorker + "=worker", "block", "null", "--", os.Args[0]}
	err := cli.Run(ctx, args, strings.NewReader(""), &stdout, stderr)
	if got := cli.ExitCode(err); got != cli.ExitInterrupted || err.Error() != "interrupted: block was aborted in the worker" {
		t.Fatalf("got exit %d, %v; want 130, interrupted: block was aborted in the worker\nstderr:\n%s", got, err, stderr)
	}
	m := regexp.MustCompile(`\(pid (\d+)\) ready`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("no worker pid in stderr:\n%s", stderr)
	}
	var pid int
	fmt.Sscan(m[1], &pid)
	testproc.Gone(t, pid)
}

// watchWriter collects what is written and calls then once when the
// output first matches. procxy serializes its writes.
type watchWriter struct {
	match *regexp.Regexp
	then  func()
	buf   strings.Builder
	done  bool
}

func (w *watchWriter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if !w.done && w.match.MatchString(w.buf.String()) {
		w.done = true
		w.then()
	}
	return len(p), nil
}

func (w *watchWriter) String() string { return w.buf.String() }

// TestBadWorkers: a command after "--" that is not a Procwire worker gives
// one clear line and exit status 4, within -init-timeout, and leaves no
// process behind. The workers that never send $init are given 2 s, which
// is plenty for this test binary to start and print its line; the others
// end the start by themselves, at once.
func TestBadWorkers(t *testing.T) {
	exe := os.Args[0]
	tests := []struct {
		mode string
		err  string // the error line, with SELF for the program
	}{
		{"exit", `procxy: SELF exited with status 1 before its Procwire $init line: it is not a Procwire worker, or it failed to start (its stderr said "panic: cannot open config.yaml")`},
		{"quiet-exit", `procxy: SELF exited with status 0 before its Procwire $init line: it is not a Procwire worker, or it failed to start (it printed nothing)`},
		{"garbage-exit", `procxy: SELF exited with status 2 before its Procwire $init line: it is not a Procwire worker, or it failed to start (its stdout ended with "usage: tool [options] file...")`},
		{"garbage", `procxy: SELF sent no Procwire $init line within 2s: it is not a Procwire worker, or it is stuck (its stdout ended with "Listening on http://localhost:8080"); it was stopped`},
		{"silent", `procxy: SELF sent no Procwire $init line within 2s: it is not a Procwire worker, or it is stuck (it printed nothing); it was stopped`},
		{"badinit", `procxy: SELF failed its Procwire handshake: host: malformed $init: module "` + filepath.Base(exe) + `": schema is not an object`},
		{"initerror", `procxy: SELF failed its Procwire handshake: host: child reported an init error: module "` + filepath.Base(exe) + `": cannot load model`},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pids")
			cmds, timeout := []string{"list", "call", "bench"}, "1h"
			if strings.Contains(tt.err, "within 2s") {
				cmds, timeout = []string{"call"}, "2s"
			}
			for _, cmd := range cmds {
				os.Remove(pidFile)
				args := []string{cmd, "-init-timeout", timeout, "-env", envBadWorker + "=" + tt.mode, "-env", envPidFile + "=" + pidFile}
				if cmd != "list" {
					args = append(args, "echo", "1")
				}
				r := run(t, "", self(), args...)
				want := strings.ReplaceAll(tt.err, "SELF", exe)
				if r.code != cli.ExitWorker || r.errLine() != want || r.stdout != "" || r.stderr != "" {
					t.Errorf("%s: exit %d, error line\n%s\nstdout %q, stderr %q; want exit 4, only the error line\n%s", cmd, r.code, r.errLine(), r.stdout, r.stderr, want)
				}
				b, err := os.ReadFile(pidFile)
				if err != nil {
					t.Fatal(err)
				}
				for _, f := range strings.Fields(string(b)) {
					var pid int
					fmt.Sscan(f, &pid)
					testproc.Gone(t, pid)
				}
			}
		})
	}
	missing := filepath.Join(t.TempDir(), "no-such-worker")
	r := run(t, "", workerCmd{"none", []string{missing}}, "list")
	if want := "procxy: cannot start " + missing + ": no such file or directory"; r.code != cli.ExitWorker || r.errLine() != want {
		t.Errorf("missing program: exit %d, %q; want exit 4, %q", r.code, r.errLine(), want)
	}
}
