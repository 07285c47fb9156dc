package nodeparent_test

// Direction A of the interop plan (docs/PROCWIRE.md §12.2, §12.5): the
// Node.js parent @procwire/core 1.5.0 drives the Go echoworker. One run of
// parent.mjs exercises every scenario below and prints one JSON line each;
// the scenario's "ok" is computed by the script from what the Node parent
// observed, and its other members are logged here.
//
//	scenario      what the Node parent checks                           §12.5
//	module "go": auth:true, heartbeat {50 ms, 500 ms}
//	spawn         spawn resolves, module ready                          1, 19
//	echo          21 values round-trip (maps, ints at every width,      3, 23
//	              floats, strings, Buffers, Dates, null, nesting)
//	echoRaw       raw codec: bytes unchanged, including empty and 300 kB    4
//	fail          ProcwireError "boom"                                  10
//	count         chunks {i} in order, then the end; zero-chunk stream  6
//	slow          {slept: 20}
//	abort         AbortError at once; the Go handler's context is       11
//	              cancelled (it emits progress {aborted:true}); the
//	              worker keeps serving
//	accept        ack {accepted: true}                                  5
//	notify        none: send returns nothing; event "notified" = input  8, 9
//	getenv        PROCWIRE_MODULE_NAME, extra env, a missing variable
//	              (null), PROCWIRE_TOKEN is the 64-hex token
//	heartbeat     1 s idle and 1 s under load (echo + streams): pongs   13
//	              keep coming, no "missed heartbeat"
//	wrap          request id 0xFFFFFFFF then 1 are answered             18
//	shutdown      shutdown() completes, exit status 0, socket gone;     14
//	              duration logged (no timing assert)
//	module "bulk": no auth, no heartbeat
//	noauth        works; PROCWIRE_TOKEN absent                          19
//	concurrency   300 concurrent calls with varied delays               24
//	backpressure  20000-chunk stream with a stalled consumer: all in    22
//	              order; worker RSS logged
//	bulkShutdown  exit status 0
//	modules "badauth", "crashy"
//	badauth       worker with another token: spawn resolves, then       20
//	              "lost its data channel", the call fails, SIGKILL
//	crash         crash mid-call: the pending call fails, exit status   25
//	              3, "process exited unexpectedly (code: 3 …)"
//
// TestParentDeath (§12.5 #15) kills the Node parent with SIGKILL and checks
// that the worker exits; TestRawParent drives the binary from Go over stdio.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/procxy/procxy/internal/testproc"
)

// scenarios run by parent.mjs, in order.
var scenarios = []string{
	"spawn", "echo", "echoRaw", "fail", "count", "slow", "abort", "accept", "notify", "getenv",
	"heartbeat", "wrap", "shutdown", "noauth", "concurrency", "backpressure", "bulkShutdown", "badauth", "crash",
}

// nodeCmd returns the command running parent.mjs in mode with the worker.
func nodeCmd(ctx context.Context, t *testing.T, mode string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	node, bin := needNode(t), needWorker(t)
	cmd := exec.CommandContext(ctx, node, "parent.mjs", bin, mode)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	return cmd, &stderr
}

func TestNodeParent(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd, stderr := nodeCmd(ctx, t, "all")
	stdout, err := cmd.Output()
	results := map[string]map[string]any{}
	for line := range strings.Lines(string(stdout)) {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Errorf("parent.mjs printed a line that is not JSON: %q", line)
			continue
		}
		name, _ := r["name"].(string)
		results[name] = r
	}
	if err != nil || results["done"] == nil {
		t.Errorf("node parent.mjs: %v (finished: %v)\nstderr:\n%s", err, results["done"] != nil, stderr)
	}
	for _, name := range scenarios {
		t.Run(name, func(t *testing.T) {
			r := results[name]
			if r == nil {
				t.Fatalf("parent.mjs printed no result for %q", name)
			}
			line, _ := json.Marshal(r)
			if r["ok"] != true {
				t.Fatalf("Node parent observed: %s\nstderr:\n%s", line, stderr)
			}
			t.Logf("%s", line)
		})
	}
	if r := results["shutdown"]; r != nil {
		t.Logf("$shutdown: Node's shutdown() returned after %v ms; worker exit status %v", r["shutdownMs"], r["code"])
	}
}

// TestParentDeath kills the Node parent with SIGKILL: the worker sees its
// stdin end and must exit on its own (§3.5, §12.5 #15).
func TestParentDeath(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd, stderr := nodeCmd(ctx, t, "orphan")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var r struct {
		Name string
		Pid  int
	}
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &r)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if err != nil || r.Pid == 0 {
		t.Fatalf("no worker pid from parent.mjs orphan (%v): %q\nstderr:\n%s", err, line, stderr)
	}
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for alive(r.Pid) {
		if time.Now().After(deadline) {
			testproc.Kill(r.Pid)
			t.Fatalf("worker %d still running 10 s after its parent was killed", r.Pid)
		}
		<-tick.C
	}
}
