//go:build unix

package main

import (
	"context"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/procxy/procxy/internal/testproc"

	"github.com/procxy/procxy/ipc"
)

// These tests run procxy ipc as a user would: serve in one process, sub
// and reply in others, pub and request in more, over a real socket, and
// compare what each prints.

var inboxRE = regexp.MustCompile(`_INBOX\.[0-9A-Za-z]+\.[0-9]+`)

// TestIPC: the commands against procxy ipc serve on its default address,
// the private socket "procxy" (here in a private XDG_RUNTIME_DIR).
func TestIPC(t *testing.T) {
	dir := shortDir(t)
	env := []string{"XDG_RUNTIME_DIR=" + dir}
	srv := start(t, env, "ipc", "serve", "-v")
	sock := filepath.Join(dir, "procxy", "procxy.sock")
	if out := srv.waitFor(true, "\n"); out != "listening on "+sock+"\n" {
		t.Fatalf("serve printed %q, want %q", out, "listening on "+sock+"\n")
	}
	for path, want := range map[string]os.FileMode{filepath.Dir(sock): os.ModeDir | 0o700, sock: os.ModeSocket | 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode() != want {
			t.Errorf("%s: %v, %v; want mode %v", path, fi.Mode(), err, want)
		}
	}
	run := func(stdin string, args ...string) ran { t.Helper(); return runEnv(t, env, stdin, args...) }

	t.Run("pub-sub", func(t *testing.T) {
		sub := start(t, env, "ipc", "sub", "-count", "4", "greet.>")
		sub.waitFor(false, "procxy: subscribed to greet.> on the ipc server procxy\n")
		js := start(t, env, "ipc", "sub", "-json", "-count", "4", "greet.*")
		js.waitFor(false, "procxy: subscribed to greet.* on the ipc server procxy\n")
		raw := start(t, env, "ipc", "sub", "-raw", "-count", "4", "greet.>")
		raw.waitFor(false, "subscribed")

		run("", "ipc", "pub", "-H", "Trace-Id:42", "greet.joe", "hello").check(t, "pub", 0, "", "")
		run("", "ipc", "pub", "-count", "2", "greet.ann", "n={{Count}}").check(t, "pub -count", 0, "", "")
		run("from stdin", "ipc", "pub", "-v", "greet.stdin").check(t, "pub from stdin", 0, "", "procxy: published 10 bytes to greet.stdin\n")

		sub.wait().check(t, "sub", 0, `[#1] Received on "greet.joe"
Trace-Id: 42

hello

[#2] Received on "greet.ann"
n=1

[#3] Received on "greet.ann"
n=2

[#4] Received on "greet.stdin"
from stdin

`, "procxy: subscribed to greet.> on the ipc server procxy\n")
		js.wait().check(t, "sub -json", 0, `{"subject":"greet.joe","header":{"Trace-Id":["42"]},"data":"hello"}
{"subject":"greet.ann","data":"n=1"}
{"subject":"greet.ann","data":"n=2"}
{"subject":"greet.stdin","data":"from stdin"}
`, "procxy: subscribed to greet.* on the ipc server procxy\n")
		if r := raw.wait(); r.code != 0 || r.stdout != "hello\nn=1\nn=2\nfrom stdin\n" {
			t.Errorf("sub -raw: exit %d, %q", r.code, r.stdout)
		}

		// Ctrl-C is how a subscription usually ends: exit status 0.
		sub = start(t, env, "ipc", "sub", "quiet.>")
		sub.waitFor(false, "subscribed")
		sub.stop(syscall.SIGINT).check(t, "sub after Ctrl-C", 0, "", "procxy: subscribed to quiet.> on the ipc server procxy\n")

		run("", "ipc", "pub", "-sync", "nobody.listens", "x").check(t, "pub -sync", 6, "",
			"procxy: publish to nobody.listens: no subscribers on the ipc server procxy\n")
	})

	t.Run("request-reply", func(t *testing.T) {
		rep := start(t, env, "ipc", "reply", "svc.echo")
		rep.waitFor(false, "procxy: answering requests to svc.echo in queue group procxy on the ipc server procxy\n")
		run("", "ipc", "request", "svc.echo", "hi").check(t, "request", 0, "hi", "")
		run("", "ipc", "request", "-json", "-H", "A:b", "svc.echo", `{"x": 1}`).check(t, "request -json", 0,
			`{"header":{"A":["b"]},"data":"{\"x\": 1}"}`+"\n", "")
		run(`{"x": [1, 2]}`, "ipc", "request", "-codec", "json", "svc.echo").check(t, "request -codec json", 0,
			"{\n  \"x\": [\n    1,\n    2\n  ]\n}\n", "")
		run("", "ipc", "request", "svc.nobody", "x").check(t, "no responders", 6, "",
			"procxy: no responders for svc.nobody on the ipc server procxy\n")
		run("", "ipc", "request", "-json", "svc.nobody", "x").check(t, "no responders -json", 6,
			`{"error":{"message":"no responders for svc.nobody on the ipc server procxy","reason":"no responders"}}`+"\n",
			"procxy: no responders for svc.nobody on the ipc server procxy\n")
		r := rep.stop(syscall.SIGTERM)
		r.stdout = inboxRE.ReplaceAllString(r.stdout, "_INBOX")
		r.check(t, "reply", 0, `[#1] Received on "svc.echo" with reply "_INBOX"
hi

[#2] Received on "svc.echo" with reply "_INBOX"
A: b

{"x": 1}

[#3] Received on "svc.echo" with reply "_INBOX"
{"x":[1,2]}

`, "procxy: answering requests to svc.echo in queue group procxy on the ipc server procxy\n")
	})

	t.Run("typed", func(t *testing.T) {
		// procxy ipc speaks to ipc's typed API in msgpack: a Go handler
		// answers procxy ipc request, and procxy ipc reply answers ipc.Call.
		c, err := ipc.Dial(t.Context(), sock)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		h, err := ipc.Handle(c, "calc.add", func(_ context.Context, x [2]int) (int, error) { return x[0] + x[1], nil })
		if err != nil {
			t.Fatal(err)
		}
		defer h.Unsubscribe()
		hs, err := ipc.HandleStream(c, "calc.count", func(_ context.Context, n int) iter.Seq2[int, error] {
			return func(yield func(int, error) bool) {
				for i := range n {
					if !yield(i, nil) {
						return
					}
				}
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer hs.Unsubscribe()
		if err := c.Flush(t.Context()); err != nil {
			t.Fatal(err)
		}
		run("", "ipc", "request", "-codec", "msgpack", "calc.add", "[2, 3]").check(t, "request to ipc.Handle", 0, "5\n", "")
		run("", "ipc", "stream", "-codec", "msgpack", "calc.count", "3").check(t, "stream from ipc.HandleStream", 0, "0\n1\n2\n", "")
		run("", "ipc", "stream", "-codec", "msgpack", "-json", "calc.count", "2").check(t, "stream -json", 0,
			`{"chunk":{"data":0}}`+"\n"+`{"chunk":{"data":1}}`+"\n"+`{"end":true,"chunks":2}`+"\n", "")

		rep := start(t, env, "ipc", "reply", "-q", "-codec", "msgpack", "calc.mul", `{"Product": 6}`)
		rep.waitFor(false, "answering")
		type product struct{ Product int }
		if got, err := ipc.Call[product](t.Context(), c, "calc.mul", [2]int{2, 3}); err != nil || got.Product != 6 {
			t.Errorf("ipc.Call to procxy ipc reply: %+v, %v; want {Product:6}", got, err)
		}
		rep.stop(syscall.SIGINT).check(t, "reply -q", 0, "", "procxy: answering requests to calc.mul in queue group procxy on the ipc server procxy\n")
	})

	t.Run("commands", func(t *testing.T) {
		up := start(t, env, "ipc", "reply", "-q", "svc.upper", "--", "tr", "a-z", "A-Z")
		up.waitFor(false, "answering")
		run("", "ipc", "request", "svc.upper", "hello world").check(t, "request to a command", 0, "HELLO WORLD", "")

		lines := start(t, env, "ipc", "reply", "-q", "svc.lines", "--", "sh", "-c", `printf 'one\ntwo\n'; cat`)
		lines.waitFor(false, "answering")
		run("", "ipc", "stream", "svc.lines", "three\n").check(t, "stream from a command", 0, "one\ntwo\nthree\n", "")
		run("", "ipc", "stream", "-json", "svc.lines", "x").check(t, "stream -json", 0,
			`{"chunk":{"data":"one\n"}}`+"\n"+`{"chunk":{"data":"two\n"}}`+"\n"+`{"chunk":{"data":"x"}}`+"\n"+`{"end":true,"chunks":3}`+"\n", "")
		run("", "ipc", "request", "svc.lines", "three\n").check(t, "request to a streaming command", 0, "one\ntwo\nthree\n", "")

		fail := start(t, env, "ipc", "reply", "-q", "svc.fail", "--", "sh", "-c", "echo 'disk full' >&2; exit 3")
		fail.waitFor(false, "answering")
		run("", "ipc", "request", "svc.fail", "x").check(t, "a failing command", 3, "",
			"procxy: svc.fail failed in the responder: sh exited with status 3: disk full (code exit_3)\n")
		run("", "ipc", "request", "-json", "svc.fail", "x").check(t, "a failing command -json", 3,
			`{"error":{"message":"sh exited with status 3: disk full","code":"exit_3","reason":"remote error"}}`+"\n",
			"procxy: svc.fail failed in the responder: sh exited with status 3: disk full (code exit_3)\n")
		run("", "ipc", "stream", "svc.fail", "x").check(t, "a failing command, streamed", 3, "",
			"procxy: svc.fail failed in the responder: sh exited with status 3: disk full (code exit_3)\n")
		// -c 2: two commands run at once. Each needs the other: with one
		// at a time, they would wait for each other for ever.
		dir := shortDir(t)
		fa, fb := filepath.Join(dir, "a"), filepath.Join(dir, "b")
		for _, f := range []string{fa, fb} {
			if err := syscall.Mkfifo(f, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		pair := start(t, env, "ipc", "reply", "-q", "-c", "2", "svc.pair", "--", "sh", "-c",
			`if [ "$(cat)" = a ]; then echo a > "$0"; cat "$1"; else cat "$0"; echo b > "$1"; fi`, fa, fb)
		pair.waitFor(false, "answering")
		ra := start(t, env, "ipc", "request", "-timeout", "0", "svc.pair", "a")
		rb := start(t, env, "ipc", "request", "-timeout", "0", "svc.pair", "b")
		ra.wait().check(t, "request a", 0, "b\n", "")
		rb.wait().check(t, "request b", 0, "a\n", "")

		for _, p := range []*bg{up, lines, fail, pair} {
			if r := p.stop(syscall.SIGINT); r.code != 0 {
				t.Errorf("reply after Ctrl-C: exit %d, %q", r.code, r.stderr)
			}
		}
	})

	t.Run("cancel", func(t *testing.T) {
		// Ctrl-C on a request cancels it in the responder: the command
		// answering it is stopped.
		fifo := filepath.Join(shortDir(t), "pid")
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			t.Fatal(err)
		}
		slow := start(t, env, "ipc", "reply", "-q", "svc.slow", "--", "sh", "-c", `echo $$ > "$0"; exec sleep 600`, fifo)
		slow.waitFor(false, "answering")
		req := start(t, env, "ipc", "request", "-timeout", "0", "svc.slow", "x")
		b, err := os.ReadFile(fifo) // opens when the command writes its pid
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		req.stop(syscall.SIGINT).check(t, "request after Ctrl-C", 130, "", "procxy: interrupted: the request to svc.slow was cancelled in the responder\n")
		testproc.Gone(t, pid)

		run("", "ipc", "request", "-timeout", "100ms", "svc.slow", "x").check(t, "request -timeout", 5, "",
			"procxy: no reply to svc.slow within -timeout 100ms; the request was cancelled in the responder\n")

		// A responder killed mid-request: the requester learns at once,
		// and the command dies with its procxy.
		req = start(t, env, "ipc", "request", "-timeout", "0", "svc.slow", "x")
		if b, err = os.ReadFile(fifo); err != nil {
			t.Fatal(err)
		}
		if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			t.Fatal(err)
		}
		slow.stop(syscall.SIGKILL)
		req.wait().check(t, "request whose responder was killed", 4, "", "procxy: the responder to svc.slow went away before answering\n")
		testproc.Gone(t, pid)
	})

	t.Run("queue-group", func(t *testing.T) {
		// Two repliers in the default queue group: each request is
		// answered once, by one of them.
		a := start(t, env, "ipc", "reply", "-json", "work", "a")
		a.waitFor(false, "answering")
		b := start(t, env, "ipc", "reply", "-json", "work", "b")
		b.waitFor(false, "answering")
		answers := map[string]int{}
		const n = 20
		for range n {
			r := run("", "ipc", "request", "work", "x")
			answers[r.stdout]++
		}
		ra, rb := a.stop(syscall.SIGINT), b.stop(syscall.SIGINT)
		na, nb := strings.Count(ra.stdout, "\n"), strings.Count(rb.stdout, "\n")
		if answers["a"] != na || answers["b"] != nb || na+nb != n || na == 0 || nb == 0 {
			t.Errorf("answers %v; replier a printed %d requests, b %d; want %d in all, each its own, both some", answers, na, nb, n)
		}
	})

	r := srv.stop(syscall.SIGINT)
	for _, want := range []string{
		`level=INFO msg="ipc: client connected" client=2 name="procxy ipc sub" identity=uid:` + strconv.Itoa(os.Getuid()),
		`msg="ipc: client disconnected"`,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("serve -v log lacks %q:\n%s", want, r.stderr)
		}
	}
	if r.code != 0 || r.stdout != "listening on "+sock+"\n" {
		t.Errorf("serve after Ctrl-C: exit %d, stdout %q", r.code, r.stdout)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket is still there after serve exited: %v", err)
	}
}

// TestIPCReconnect: a subscriber outlives its server: it says so, and
// when a new server comes up it subscribes again and goes on printing.
func TestIPCReconnect(t *testing.T) {
	addr := filepath.Join(shortDir(t), "s.sock")
	srv := start(t, nil, "ipc", "serve", "-server", addr)
	srv.waitFor(true, "listening on")
	sub := start(t, nil, "ipc", "sub", "-server", addr, "-count", "2", "news")
	sub.waitFor(false, "subscribed")
	runEnv(t, nil, "", "ipc", "pub", "-server", addr, "news", "first").check(t, "pub", 0, "", "")
	sub.waitFor(true, "first")
	srv.stop(syscall.SIGTERM)
	sub.waitFor(false, "procxy: disconnected from the ipc server "+addr)
	srv = start(t, nil, "ipc", "serve", "-server", addr)
	srv.waitFor(true, "listening on")
	sub.waitFor(false, "procxy: reconnected to the ipc server "+addr+"\n")
	// The subscriber sent its subscription again when it reconnected, but
	// the server reads each client on its own: publish with -sync until
	// the server has routed the message to it.
	for n := 1; ; n++ {
		r := runEnv(t, nil, "", "ipc", "pub", "-sync", "-server", addr, "news", "second")
		if r.code == 0 {
			break
		}
		if r.code != 6 || n == 1000 {
			t.Fatalf("pub -sync after the server restarted, attempt %d: exit %d, %q", n, r.code, r.stderr)
		}
	}
	r := sub.wait()
	if r.code != 0 || !strings.HasSuffix(r.stdout, "second\n\n") {
		t.Errorf("sub: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	srv.stop(syscall.SIGTERM)
}

// TestIPCConnectErrors: a server that is not there, and ctx ended by
// Ctrl-C before anything happens, each give one line.
func TestIPCConnectErrors(t *testing.T) {
	addr := filepath.Join(shortDir(t), "none.sock")
	runEnv(t, nil, "", "ipc", "request", "-server", addr, "svc", "x").check(t, "no server", 4, "",
		fmt.Sprintf("procxy: cannot connect to the ipc server %s: no such file or directory; is procxy ipc serve running?\n", addr))
	runEnv(t, nil, "", "ipc", "pub", "-nats", "nats://127.0.0.1:1", "svc", "x").check(t, "no NATS", 4, "",
		"procxy: cannot connect to the NATS server at nats://127.0.0.1:1: connection refused\n")
}
