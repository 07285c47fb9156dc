//go:build linux

package childproc_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/procxy/procxy/childproc"
)

// gen returns the i-th test message, the same value as gen(i) in
// testdata/gen.cjs. Message 5000 is about 1 MiB.
func gen(i int) any {
	if i == 5000 {
		return map[string]any{"big": strings.Repeat("é€😀x", 104858)}
	}
	switch i % 5 {
	case 0:
		return "msg-" + itoa(i) + "-é€😀\u2028\"\\\n\t"
	case 1:
		return float64(i)*0.5 - 100
	case 2:
		return map[string]any{"i": i, "arr": []any{i, "x", nil, true, map[string]any{"deep": map[string]any{"deeper": []any{i, -i}}}}, "s": "ü中文"}
	case 3:
		return []any{i, -i, "中文", false, nil}
	}
	if i%2 == 0 {
		return nil
	}
	return true
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// generic returns v as encoding/json decodes it into any, for comparisons.
func generic(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// forkNode forks testdata/child.cjs in mode; it is killed at the end of
// the test.
func forkNode(t *testing.T, mode string, o childproc.Options) *childproc.Child {
	t.Helper()
	requireNode(t)
	c, err := childproc.Fork(t.Context(), "testdata/child.cjs", []string{mode}, o)
	if err != nil {
		t.Fatal(err)
	}
	cleanupChild(t, c)
	return c
}

// TestNodeExchange: a Go parent and a forked Node child exchange 10,000
// messages each way (strings, numbers, nested objects, unicode and one
// 1 MiB message): Node echoes what Go sends, and Node generates the same
// sequence for Go.
func TestNodeExchange(t *testing.T) {
	const n = 10000
	c := forkNode(t, "echo", childproc.Options{})
	ch := c.Channel()
	ctx := t.Context()
	errc := make(chan error, 1)
	go func() {
		for i := range n {
			if err := ch.Send(ctx, gen(i)); err != nil {
				errc <- err
				return
			}
		}
		errc <- ch.Send(ctx, map[string]any{"op": "generate", "n": n})
	}()
	recv := func(what string, i int) any {
		m, ok := <-ch.Messages()
		if !ok {
			t.Fatalf("%s %d: channel closed: %v", what, i, ch.Err())
		}
		var v any
		if err := json.Unmarshal(m, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	for i := range n {
		if got, want := recv("echo", i), generic(t, gen(i)); !reflect.DeepEqual(got, want) {
			t.Fatalf("echo %d: got %.100v, want %.100v", i, got, want)
		}
	}
	for i := range n {
		if got, want := recv("generated", i), generic(t, gen(i)); !reflect.DeepEqual(got, want) {
			t.Fatalf("generated %d: got %.100v, want %.100v", i, got, want)
		}
	}
	if got := recv("done", n); !reflect.DeepEqual(got, map[string]any{"done": float64(n)}) {
		t.Fatalf("got %v, want done", got)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	// Our disconnect is seen by Node, which exits with 42.
	if err := ch.Disconnect(); err != nil {
		t.Fatal(err)
	}
	var ee *childproc.ExitError
	if err := c.Wait(ctx); !errors.As(err, &ee) || ee.Code != 42 {
		t.Fatalf("Wait = %v, want exit status 42 (Node saw the disconnect)", err)
	}
}

// TestNodeDisconnectFromNode: the Node child calls process.disconnect()
// and keeps running; the Go parent sees the disconnect while it is alive.
func TestNodeDisconnectFromNode(t *testing.T) {
	c := forkNode(t, "echo", childproc.Options{Stdin: childproc.Pipe()})
	ch := c.Channel()
	if err := ch.Send(t.Context(), map[string]string{"op": "disconnect"}); err != nil {
		t.Fatal(err)
	}
	for range ch.Messages() {
		t.Error("got a message, want none")
	}
	<-ch.Disconnected()
	select {
	case <-c.Exited():
		t.Fatal("child exited, want it alive after its disconnect")
	default:
	}
	if ch.Connected() || ch.Err() != nil {
		t.Errorf("Connected %v, Err %v; want false, nil", ch.Connected(), ch.Err())
	}
	if err := ch.Send(t.Context(), 1); !errors.Is(err, childproc.ErrDisconnected) {
		t.Errorf("Send after the peer's disconnect = %v, want ErrDisconnected", err)
	}
	c.Stdin().Close()
	if err := c.Wait(t.Context()); err != nil {
		t.Fatalf("Wait = %v, want exit 0", err)
	}
}

// TestNodeMaxMessageSize: a Node child sends a line longer than
// MaxMessageSize; the channel ends with ErrMessageTooLarge (after reading
// at most the limit) and Node sees the disconnect.
func TestNodeMaxMessageSize(t *testing.T) {
	c := forkNode(t, "echo", childproc.Options{MaxMessageSize: 1000})
	ch := c.Channel()
	if err := ch.Send(t.Context(), map[string]any{"op": "big", "n": 5000}); err != nil {
		t.Fatal(err)
	}
	for m := range ch.Messages() {
		t.Errorf("got %.40s, want no message", m)
	}
	if err := ch.Err(); !errors.Is(err, childproc.ErrMessageTooLarge) || !errors.Is(err, childproc.ErrProtocol) {
		t.Errorf("Err() = %v, want ErrMessageTooLarge", err)
	}
	var ee *childproc.ExitError
	if err := c.Wait(t.Context()); !errors.As(err, &ee) || ee.Code != 42 {
		t.Errorf("Wait = %v, want exit status 42 (Node saw the disconnect)", err)
	}
}

// TestForkExecPath forks with ExecPath and ExecArgv, as Node's fork(): the
// program gets [execArgv..., modulePath, args...].
func TestForkExecPath(t *testing.T) {
	c, err := childproc.Fork(t.Context(), "module.js", []string{"arg"}, helperOpts("echo",
		childproc.Options{ExecPath: os.Args[0], ExecArgv: []string{"-test.run=none"}, Stdin: childproc.Ignore()}))
	if err != nil {
		t.Fatal(err)
	}
	cleanupChild(t, c)
	if got, want := c.SpawnArgs(), []string{os.Args[0], "-test.run=none", "module.js", "arg"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SpawnArgs() = %q, want %q", got, want)
	}
	if m := <-c.Channel().Messages(); !strings.Contains(string(m), "from go child") {
		t.Errorf("got %s, want the Go child's hello", m)
	}
	c.Channel().Send(t.Context(), map[string]string{"op": "bye"})
	<-c.Channel().Messages()
	if err := c.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestNodeVectors: the bytes a real Node child writes match §7.1.
func TestNodeVectors(t *testing.T) {
	c := forkNode(t, "vectors", childproc.Options{})
	var got [][]byte
	for m := range c.Channel().Messages() {
		got = append(got, m)
	}
	if err := c.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(nodeVectors)-1 {
		t.Fatalf("got %d messages, want %d", len(got), len(nodeVectors)-1)
	}
	for i, m := range got {
		want := vectorBytes(t, nodeVectors[i].hex)
		if line := append(m, '\n'); !bytes.Equal(line, want) {
			t.Errorf("%s: got %s, want %s", nodeVectors[i].name, hex.EncodeToString(line), nodeVectors[i].hex)
		}
	}
}

// TestNodeTranscript replays §7.3: raw lines with a NODE_ message, CRLF
// and a line split across writes reach a Node child as Node documents.
func TestNodeTranscript(t *testing.T) {
	c := forkNode(t, "transcript", childproc.Options{})
	ch := c.Channel()
	ctx := t.Context()
	for _, w := range []string{
		`{"hello":"from go","n":1}` + "\n",
		`"a string"` + "\n",
		`{"cmd":"NODE_SECRET","x":1}` + "\n", // raw: Send would refuse it
		"{\"crlf\":true}\r\n",
		`{"split":`,
		`"yes"}` + "\n" + `{"two":2}` + "\n",
	} {
		if err := ch.WriteRaw(ctx, []byte(w)); err != nil {
			t.Fatal(err)
		}
	}
	if err := ch.Send(ctx, map[string]string{"bytes": "aGk=", "html": "<a&b>"}); err != nil {
		t.Fatal(err)
	}
	if err := ch.Send(ctx, map[string]string{"please": "bye"}); err != nil {
		t.Fatal(err)
	}
	if m := <-ch.Messages(); string(m) != `{"echo":"bye"}` {
		t.Fatalf("got %s, want {\"echo\":\"bye\"}", m)
	}
	if err := ch.Send(ctx, map[string]bool{"final": true}); err != nil {
		t.Fatal(err)
	}
	var report struct {
		Received []any `json:"received"`
		Internal []any `json:"internal"`
	}
	if err := json.Unmarshal(<-ch.Messages(), &report); err != nil {
		t.Fatal(err)
	}
	want := []any{
		map[string]any{"hello": "from go", "n": 1.0}, "a string", map[string]any{"crlf": true},
		map[string]any{"split": "yes"}, map[string]any{"two": 2.0},
		map[string]any{"bytes": "aGk=", "html": "<a&b>"}, map[string]any{"please": "bye"}, map[string]any{"final": true},
	}
	if !reflect.DeepEqual(report.Received, want) {
		t.Errorf("Node received %v,\nwant %v", report.Received, want)
	}
	if wantInternal := []any{map[string]any{"cmd": "NODE_SECRET", "x": 1.0}}; !reflect.DeepEqual(report.Internal, wantInternal) {
		t.Errorf("Node's internalMessage got %v, want %v", report.Internal, wantInternal)
	}
	ch.Disconnect()
	if err := c.Wait(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestNodeHandleNACK: a Node child sends a net.Server handle; childproc
// answers NODE_HANDLE_NACK, so Node releases the message it queued behind
// the handle, and never delivers the handle's own message.
func TestNodeHandleNACK(t *testing.T) {
	c := forkNode(t, "handle", childproc.Options{})
	ch := c.Channel()
	if m := <-ch.Messages(); string(m) != `{"after":"handle"}` {
		t.Fatalf("got %s, want {\"after\":\"handle\"} (released by our NACK)", m)
	}
	if err := ch.Send(t.Context(), map[string]string{"op": "report"}); err != nil {
		t.Fatal(err)
	}
	if m := <-ch.Messages(); string(m) != `{"internal":["NODE_HANDLE_NACK"]}` {
		t.Errorf("Node saw %s, want exactly one NODE_HANDLE_NACK", m)
	}
	ch.Disconnect()
	<-c.Done()
}

// TestNodeParent runs testdata/parent.cjs: a Node parent starts this test
// binary as a Go child with an 'ipc' stdio entry, and the Go child talks
// back through childproc.Parent.
func TestNodeParent(t *testing.T) {
	node := requireNode(t)
	for _, scenario := range []string{"talk", "child-disconnect", "parent-disconnect", "hygiene", "handle", "internal"} {
		t.Run(scenario, func(t *testing.T) {
			stdout, stderr, err := childproc.ExecFile(t.Context(), node, []string{"testdata/parent.cjs", scenario, os.Args[0]},
				childproc.Options{Env: append(os.Environ(), noRaceExitDelay)})
			var res struct {
				OK     bool            `json:"ok"`
				Events []string        `json:"events"`
				Detail json.RawMessage `json:"detail"`
			}
			if jerr := json.Unmarshal(stdout, &res); err != nil || jerr != nil || !res.OK {
				t.Fatalf("node parent: %v %v\nstdout: %s\nstderr: %s", err, jerr, stdout, stderr)
			}
		})
	}
}

// TestParentNone: without NODE_CHANNEL_FD, Parent returns nil, nil.
func TestParentNone(t *testing.T) {
	out, _, err := childproc.ExecFile(context.Background(), os.Args[0], nil, helperOpts("parent-none", childproc.Options{}))
	if err != nil || string(out) != "true <nil>" {
		t.Errorf("got %q, %v; want \"true <nil>\"", out, err)
	}
}
