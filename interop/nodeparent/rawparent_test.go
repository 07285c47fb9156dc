package nodeparent_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// wantInit is the echoworker's $init line with the socket path replaced by
// PIPE: the member order and layout of the reference child (§4.3, §11.5).
const wantInit = `{"jsonrpc":"2.0","method":"$init","params":{"pipe":"PIPE","schema":{"methods":{` +
	`"echo":{"id":1,"response":"result"},"echoRaw":{"id":2,"response":"result"},` +
	`"fail":{"id":3,"response":"result"},"count":{"id":4,"response":"stream"},` +
	`"slow":{"id":5,"response":"result"},"accept":{"id":6,"response":"ack"},` +
	`"notify":{"id":7,"response":"none"},"getenv":{"id":8,"response":"result"},` +
	`"crash":{"id":9,"response":"none"}},"events":{"progress":{"id":1},"notified":{"id":2}}},` +
	`"version":"1.0.0"}}` + "\n"

// rawWorker is the echoworker started by a hand-written Go parent.
type rawWorker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	pipe  string
}

func startRaw(t *testing.T) *rawWorker {
	t.Helper()
	cmd := exec.Command(needWorker(t))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	w := &rawWorker{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	line, err := w.out.ReadString('\n')
	if err != nil {
		t.Fatalf("reading $init: %v", err)
	}
	var init struct{ Params struct{ Pipe string } }
	if err := json.Unmarshal([]byte(line), &init); err != nil {
		t.Fatalf("$init is not JSON: %v: %q", err, line)
	}
	w.pipe = init.Params.Pipe
	if got := strings.Replace(line, `"pipe":`+jsonString(w.pipe), `"pipe":"PIPE"`, 1); got != wantInit {
		t.Errorf("$init line:\n got %s\nwant %s", got, wantInit)
	}
	return w
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

// wait waits for the worker to exit and returns its exit status.
func (w *rawWorker) wait(t *testing.T) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- w.cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(10 * time.Second):
		w.cmd.Process.Kill()
		<-done
		t.Fatal("the worker did not exit within 10 s")
		return -1
	}
}

// TestRawParentShutdown: $ping → $pong, then $shutdown ends the process with
// status 0 and removes the socket file, while the connection is open.
func TestRawParentShutdown(t *testing.T) {
	w := startRaw(t)
	conn, err := net.Dial("unix", w.pipe)
	if err != nil {
		t.Fatalf("dial the announced socket: %v", err)
	}
	defer conn.Close()
	io.WriteString(w.stdin, `{"jsonrpc":"2.0","method":"$ping"}`+"\n")
	if line, err := w.out.ReadString('\n'); err != nil || line != `{"jsonrpc":"2.0","method":"$pong"}`+"\n" {
		t.Fatalf("after $ping read %q, %v; want the $pong line", line, err)
	}
	start := time.Now()
	io.WriteString(w.stdin, `{"jsonrpc":"2.0","method":"$shutdown","params":{}}`+"\n")
	if code := w.wait(t); code != 0 {
		t.Errorf("exit status after $shutdown = %d, want 0", code)
	}
	t.Logf("$shutdown to process exit: %v", time.Since(start))
	if _, err := os.Stat(w.pipe); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after shutdown: stat = %v, want not exist", err)
	}
	if rest, _ := io.ReadAll(w.out); len(rest) != 0 {
		t.Errorf("stdout after $pong: %q, want nothing", rest)
	}
}

// TestRawParentStdinEOF: closing stdin (the parent died) ends the worker
// with status 0 before anyone connected.
func TestRawParentStdinEOF(t *testing.T) {
	w := startRaw(t)
	w.stdin.Close()
	if code := w.wait(t); code != 0 {
		t.Errorf("exit status after stdin EOF = %d, want 0", code)
	}
	if _, err := os.Stat(w.pipe); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after exit: stat = %v, want not exist", err)
	}
}

// TestRawParentConnLost: when the parent closes the data connection the
// worker ends its session and exits with status 0 (§3.5).
func TestRawParentConnLost(t *testing.T) {
	w := startRaw(t)
	conn, err := net.Dial("unix", w.pipe)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if code := w.wait(t); code != 0 {
		t.Errorf("exit status after the connection closed = %d, want 0", code)
	}
}
