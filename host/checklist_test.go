package host_test

// Procwire protocol §10.2, "Go parent (manager spawning @procwire/client
// workers)": each item and the tests that show it. "node" and "go" are the
// subtests run against the Node.js worker (interop/nodeworker/worker.mjs on
// @procwire/client 1.3.1) and the Go examples/echoworker; testworker modes
// are broken children (internal/testworker). TestChecklistTests checks
// that every test named here exists.
//
// | §10.2 item                                            | tests                                                          |
// |-------------------------------------------------------|----------------------------------------------------------------|
// | Spawn with stdin/stdout pipes (stderr: piped to the   | TestInterop/*/getenv (PROCWIRE_MODULE_NAME, Config.Env, token  |
// | log, §4 of the issue), env + PROCWIRE_MODULE_NAME,    | removed when auth is off), TestChildEnv, TestAuth (token set), |
// | PROCWIRE_TOKEN only with auth                         | TestNoisyChild + TestInterop/node/child output (stderr logged) |
// | Read stdout for the child's whole life; ignore lines  | TestNoisyChild (text, non-control JSON, 1.5 MiB line, CR/CRLF  |
// | not starting with '{'; $init, $error before init,     | before $init), TestLines, TestLinesBounded, TestParseControl,  |
// | $pong                                                 | TestSpawnFailures/error, TestInterop/*/heartbeat (pongs)       |
// | Validate $init per §4.5                               | TestSpawnFailures/mismatch + /badinit, TestParseInit,          |
// |                                                       | TestParseInitMalformed, TestParseInitDiffs                     |
// | Connect within a timeout; with auth, AUTH frame first | TestAuth (first frame is AUTH with the env token),             |
// |                                                       | TestAuthWrongToken, TestSpawnJoinsErrors (connect failure)     |
// | Keep stdin open; heartbeat per §9.2; $shutdown, grace | TestInterop/*/heartbeat idle and under load (50/500 ms),       |
// | period, kill                                          | TestHeartbeat (virtual time), TestHeartbeatKill,               |
// |                                                       | TestShutdownGrace, TestInterop (measures $shutdown),           |
// |                                                       | TestParentDeath/eof (stdin EOF ends the worker)                |
// | Request ids from 1, skip 0, wrap after 0xFFFFFFFF;    | TestInterop/*/request id wrap (ids FFFFFFFC…FFFFFFFF, 1, 2, 3  |
// | none uses 0                                           | on the wire, answered), TestInterop/*/notify and events (id 0) |
// | Never an empty or malformed msgpack payload           | TestInterop/*/accept (nil request is c0, one byte),            |
// |                                                       | TestInterop/*/echo (values of every msgpack kind round trip)   |
// | Route frames as §6.10; msgpack error payloads, message| TestInterop/*/fail, /count, /accept, /notify and events,       |
// | per §6.7; empty ack payload is no data                | /concurrency (rpc: TestAckWithoutData, TestStreamError)        |
// | Timeouts for result/ack (30 s default; method → child | TestTimeouts (method, module default, disabled, child schema,  |
// | schema → module); none for streams                    | method over schema), TestMethodTimeout, TestResolve            |
// | Abort = 0xFFFF frame with the id; forget at once      | TestInterop/*/abort (worker stops, reports), TestInterop/*/    |
// |                                                       | count aborted by break, TestTimeouts (abort after timeout)     |
// | Bounded per-stream queues; stop reading while full    | rpc.Options.StreamBuffer (256) in the engine; TestInterop/*/   |
// |                                                       | count (2000 chunks) (rpc: TestProcessSlowConsumer)             |
// | On data-plane loss while ready: fail pending work,    | TestConnLost, TestAuthWrongToken, TestCrashMidCall (restart,   |
// | kill, restart policy; never reconnect                 | budget), TestHeartbeatKill (restart after the kill)            |
//
// Beyond §10.2: TestSpawnFailures/exit (retries, exit status and stderr in
// the error), TestInitTimeout, TestShutdownDuringSpawn, TestSpawnStates,
// TestRetrySchedule and TestBackoff and TestRestartLimit (virtual time),
// TestManager, TestParentDeath/pdeathsig, Example, ExampleManager.

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestChecklistTests(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	var table string
	for _, name := range files {
		f, err := parser.ParseFile(fset, name, nil, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil {
				have[fn.Name.Name] = true
			}
		}
		if name == "checklist_test.go" {
			for _, cg := range f.Comments {
				table += cg.Text()
			}
		}
	}
	for _, name := range regexp.MustCompile(`\b(Test|Example)\w*`).FindAllString(table, -1) {
		if !have[name] && !strings.HasPrefix(name, "TestProcess") && !strings.HasPrefix(name, "TestAck") && !strings.HasPrefix(name, "TestStream") {
			t.Errorf("the §10.2 table names %s, which does not exist", name)
		}
	}
}
