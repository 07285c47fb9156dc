package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKVD runs the daemon and the command-line tool as a user would:
// separate processes talking over a Unix socket.
func TestKVD(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "kvd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	sock, err := os.MkdirTemp("", "kvd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(sock)
	env := append(os.Environ(), "KVD_ADDR="+filepath.Join(sock, "kvd.sock"))
	kvd := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kvd %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}

	daemon := exec.Command(bin, "serve")
	daemon.Env = env
	dout, _ := daemon.StdoutPipe()
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	defer daemon.Process.Kill()
	if line, _ := bufio.NewReader(dout).ReadString('\n'); !strings.HasPrefix(line, "kvd: serving on") {
		t.Fatalf("daemon said %q", line)
	}

	kvd("set", "color", "blue")
	if got := kvd("get", "color"); got != "blue" {
		t.Errorf("get color = %q", got)
	}
	watcher := exec.Command(bin, "watch")
	watcher.Env = env
	wout, _ := watcher.StdoutPipe()
	if err := watcher.Start(); err != nil {
		t.Fatal(err)
	}
	defer watcher.Process.Kill()
	changes := bufio.NewScanner(wout)

	// The watch starts with the current values.
	if !changes.Scan() || changes.Text() != "color = blue" {
		t.Fatalf("watch printed %q first, want \"color = blue\"", changes.Text())
	}
	kvd("set", "color", "green")
	if !changes.Scan() || changes.Text() != "color = green" {
		t.Errorf("watch printed %q, want \"color = green\"", changes.Text())
	}
	cmd := exec.Command(bin, "get", "shape")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "no key shape") {
		t.Errorf("get of a missing key: %v, %s", err, out)
	}
	kvd("stop")
	if err := daemon.Wait(); err != nil {
		t.Errorf("daemon exit: %v", err)
	}
	watcher.Wait() // the stream ended with the daemon
}
