package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// bg is a procxy command running in the background — ipc serve, sub,
// reply — whose output the test reads as it comes.
type bg struct {
	t    *testing.T
	args []string
	cmd  *exec.Cmd

	mu             sync.Mutex
	stdout, stderr bytes.Buffer // guarded by mu
	ended          int          // pipes at EOF; guarded by mu
	changed        chan struct{}
	readers        sync.WaitGroup

	waited bool
	result ran
}

// start starts procxy with args and env added to the environment. The
// test's cleanup kills it if the test did not stop it.
func start(t *testing.T, env []string, args ...string) *bg {
	t.Helper()
	cmd := exec.Command(binary(t, "procxy"), args...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &bg{t: t, args: args, cmd: cmd, changed: make(chan struct{}, 1)}
	p.readers.Go(func() { p.copy(stdout, &p.stdout) })
	p.readers.Go(func() { p.copy(stderr, &p.stderr) })
	t.Cleanup(func() {
		if !p.waited {
			cmd.Process.Kill()
			p.wait()
		}
	})
	return p
}

func (p *bg) copy(r io.Reader, buf *bytes.Buffer) {
	b := make([]byte, 4096)
	for {
		n, err := r.Read(b)
		p.mu.Lock()
		buf.Write(b[:n])
		if err != nil {
			p.ended++
		}
		p.mu.Unlock()
		select {
		case p.changed <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// waitFor waits until the process has written s on stderr (or, with
// stdout set, on stdout), and returns what it has written there so far.
// It fails the test if the process ends first. It does not time out: a
// process that never says it hangs the test, and go test -timeout reports
// which.
func (p *bg) waitFor(stdout bool, s string) string {
	p.t.Helper()
	for {
		p.mu.Lock()
		out := p.stderr.String()
		if stdout {
			out = p.stdout.String()
		}
		ended := p.ended == 2
		all := "stdout:\n" + p.stdout.String() + "\nstderr:\n" + p.stderr.String()
		p.mu.Unlock()
		if strings.Contains(out, s) {
			return out
		}
		if ended {
			p.wait()
			p.t.Fatalf("procxy %s exited (status %d) without printing %q\n%s", strings.Join(p.args, " "), p.result.code, s, all)
		}
		<-p.changed
	}
}

// stop sends sig and waits for the process to exit.
func (p *bg) stop(sig syscall.Signal) ran {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatal(err)
	}
	return p.wait()
}

// wait waits for the process to exit and returns what it printed.
func (p *bg) wait() ran {
	if p.waited {
		return p.result
	}
	p.readers.Wait() // Wait closes the pipes: read them to the end first
	err := p.cmd.Wait()
	p.waited = true
	p.result = ran{stdout: p.stdout.String(), stderr: p.stderr.String()}
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		p.result.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.result.code = 128 + int(ws.Signal())
		}
	} else if err != nil {
		p.t.Errorf("procxy %s: %v", strings.Join(p.args, " "), err)
	}
	return p.result
}

// runEnv runs procxy to its end with env added to the environment.
func runEnv(t *testing.T, env []string, stdin string, args ...string) ran {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), binary(t, "procxy"), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return ran{stdout.String(), stderr.String(), code}
}

// check fails the test unless r has the exit code, stdout and stderr.
func (r ran) check(t *testing.T, what string, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code || r.stdout != stdout || r.stderr != stderr {
		t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d, stdout %q, stderr %q", what, r.code, r.stdout, r.stderr, code, stdout, stderr)
	}
}

// shortDir is a temporary directory with a short path (a Unix socket's
// path must fit in about 100 bytes), mode 0700.
func shortDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "px")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}
