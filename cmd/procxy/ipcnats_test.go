//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/procxy/procxy/internal/testproc"

	"github.com/procxy/procxy/ipc/natsipc"
)

// TestIPCNATS: the same commands on NATS: against an embedded
// nats-server this test starts, and against procxy ipc serve -nats.
func TestIPCNATS(t *testing.T) {
	ns, err := natsipc.StartServer(t.Context(), natsipc.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	url := ns.URL()
	where := "the NATS server at " + url
	ipcArgs := func(cmd string, args ...string) []string { return append([]string{"ipc", cmd, "-nats", url}, args...) }
	run := func(stdin string, cmd string, args ...string) ran {
		t.Helper()
		return runEnv(t, nil, stdin, ipcArgs(cmd, args...)...)
	}

	sub := start(t, nil, ipcArgs("sub", "-count", "3", "greet.*")...)
	sub.waitFor(false, "procxy: subscribed to greet.* on "+where+"\n")
	run("", "pub", "-H", "Trace-Id:42", "greet.joe", "hello").check(t, "pub", 0, "", "")
	run("", "pub", "-count", "2", "greet.ann", "n={{Count}}").check(t, "pub -count", 0, "", "")
	sub.wait().check(t, "sub", 0, `[#1] Received on "greet.joe"
Trace-Id: 42

hello

[#2] Received on "greet.ann"
n=1

[#3] Received on "greet.ann"
n=2

`, "procxy: subscribed to greet.* on "+where+"\n")

	echo := start(t, nil, ipcArgs("reply", "-q", "svc.echo")...)
	echo.waitFor(false, "procxy: answering requests to svc.echo in queue group procxy on "+where+"\n")
	run("", "request", "-json", "-H", "A:b", "svc.echo", "hi").check(t, "request", 0, `{"header":{"A":["b"]},"data":"hi"}`+"\n", "")
	run("", "request", "svc.none", "x").check(t, "no responders", 6, "", "procxy: no responders for svc.none on "+where+"\n")

	lines := start(t, nil, ipcArgs("reply", "-q", "svc.lines", "--", "sh", "-c", `printf 'one\ntwo\n'; exit 2`)...)
	lines.waitFor(false, "answering")
	run("", "stream", "-json", "svc.lines").check(t, "a stream that fails", 3,
		`{"chunk":{"data":"one\n"}}`+"\n"+`{"chunk":{"data":"two\n"}}`+"\n"+`{"error":{"message":"sh exited with status 2","code":"exit_2","reason":"remote error"}}`+"\n",
		"procxy: svc.lines failed in the responder: sh exited with status 2 (code exit_2)\n")

	// Cancellation reaches the responder on NATS too (natsipc's
	// convention): the command answering the request is stopped.
	fifo := filepath.Join(shortDir(t), "pid")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	slow := start(t, nil, ipcArgs("reply", "-q", "svc.slow", "--", "sh", "-c", `echo $$ > "$0"; exec sleep 600`, fifo)...)
	slow.waitFor(false, "answering")
	req := start(t, nil, ipcArgs("request", "-timeout", "0", "svc.slow")...)
	b, err := os.ReadFile(fifo)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	req.stop(syscall.SIGINT).check(t, "request after Ctrl-C", 130, "", "procxy: interrupted: the request to svc.slow was cancelled in the responder\n")
	testproc.Gone(t, pid)

	for _, p := range []*bg{echo, lines, slow} {
		if r := p.stop(syscall.SIGTERM); r.code != 0 {
			t.Errorf("reply after SIGTERM: exit %d, %q", r.code, r.stderr)
		}
	}
}

// TestIPCServeNATS: procxy ipc serve -nats runs an embedded nats-server
// that the other commands reach with -nats; -token protects it.
func TestIPCServeNATS(t *testing.T) {
	srv := start(t, nil, "ipc", "serve", "-nats", "nats://127.0.0.1:0", "-token", "s3cret")
	out := srv.waitFor(true, "\n")
	url, ok := strings.CutPrefix(strings.TrimSpace(out), "listening on ")
	if !ok || !strings.HasPrefix(url, "nats://127.0.0.1:") {
		t.Fatalf("serve -nats printed %q", out)
	}
	rep := start(t, nil, "ipc", "reply", "-nats", url, "-token", "s3cret", "-q", "svc.time", "12:00")
	rep.waitFor(false, "answering")
	runEnv(t, nil, "", "ipc", "request", "-nats", url, "-token", "s3cret", "svc.time").check(t, "request", 0, "12:00", "")
	r := runEnv(t, nil, "", "ipc", "request", "-nats", url, "svc.time")
	if r.code != 4 || !strings.HasPrefix(r.stderr, "procxy: cannot connect to the NATS server at "+url+": ") ||
		!strings.Contains(r.stderr, "authentication failed") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("request without the token: exit %d, %q; want exit 4 and one line saying authentication failed", r.code, r.stderr)
	}
	rep.stop(syscall.SIGINT)
	r = srv.stop(syscall.SIGINT)
	if r.code != 0 || r.stdout != out || !strings.Contains(r.stderr, "authentication error") || strings.Contains(r.stderr, "s3cret") {
		t.Errorf("serve -nats: exit %d, stdout %q, stderr %q; want exit 0 and the refused connection logged without the token", r.code, r.stdout, r.stderr)
	}
}
