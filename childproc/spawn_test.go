package childproc_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/procxy/procxy/childproc"
)

// spawn starts a child whose lifetime is bounded by the test.
func spawn(t *testing.T, file string, args []string, o childproc.Options) *childproc.Child {
	t.Helper()
	c, err := childproc.Spawn(t.Context(), file, args, o)
	if err != nil {
		t.Fatalf("Spawn(%q, %q): %v", file, args, err)
	}
	cleanupChild(t, c)
	return c
}

// output reads a child's stdout to the end, discards its stderr, and waits
// for it. (Done waits for every pipe to be read to EOF or closed.)
func output(t *testing.T, c *childproc.Child) (string, error) {
	t.Helper()
	if e := c.Stderr(); e != nil {
		e.Close()
	}
	b, err := io.ReadAll(c.Stdout())
	if err != nil {
		t.Fatalf("read stdout: %v", err)
	}
	return string(b), c.Wait(t.Context())
}

// pipe returns a pipe closed at the end of the test.
func pipe(t *testing.T) (r, w *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

func TestSpawnStdio(t *testing.T) {
	tests := []struct {
		name   string
		script string
		opts   childproc.Options
		stdin  string
		stream string // which pipe to read
		want   string
	}{
		{"pipe", "echo out; read x; echo got $x; echo err >&2", childproc.Options{}, "in\n", "stdout", "out\ngot in\n"},
		{"pipe-stderr", "echo out; echo err >&2", childproc.Options{Stdout: childproc.Ignore()}, "", "stderr", "err\n"},
		{"ignore-stdin", "cat; echo eof", childproc.Options{Stdin: childproc.Ignore()}, "", "stdout", "eof\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := spawn(t, "sh", []string{"-c", tt.script}, tt.opts)
			if in := c.Stdin(); in != nil {
				io.WriteString(in, tt.stdin)
				in.Close()
			}
			read, other := c.Stdout(), c.Stderr()
			if tt.stream == "stderr" {
				read, other = other, read
			}
			if other != nil {
				go io.Copy(io.Discard, other) // ends at EOF, before Wait returns
			}
			got, err := io.ReadAll(read)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Wait(t.Context()); err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSpawnInherit gives the child the parent's os.Stdout.
func TestSpawnInherit(t *testing.T) {
	r, w := pipe(t)
	saved := os.Stdout
	os.Stdout = w
	c := spawn(t, "echo", []string{"inherited"}, childproc.Options{Stdout: childproc.Inherit(), Stdin: childproc.Ignore(), Stderr: childproc.Ignore()})
	os.Stdout = saved
	if err := c.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if got, _ := io.ReadAll(r); string(got) != "inherited\n" {
		t.Errorf("got %q, want %q", got, "inherited\n")
	}
}

func TestSpawnFilesAndExtraFiles(t *testing.T) {
	r, w := pipe(t)
	// fd 1 and fds 3 and 5 are our pipe; fd 4 (a nil entry) is closed.
	c := spawn(t, "sh", []string{"-c", `echo one; echo three >&3; test -e /dev/fd/4 && echo four-open; echo five >&5`},
		childproc.Options{Stdout: childproc.FromFile(w), Stderr: childproc.Ignore(), Stdin: childproc.Ignore(),
			ExtraFiles: []*os.File{w, nil, w}})
	if c.Stdout() != nil || c.Stdin() != nil || c.Stderr() != nil {
		t.Error("got pipes for non-pipe stdio, want nil")
	}
	if err := c.Wait(t.Context()); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, _ := io.ReadAll(r)
	if want := "one\nthree\nfive\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSpawnEnv(t *testing.T) {
	t.Setenv("CHILDPROC_INHERITED", "yes")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mytool"), []byte("#!/bin/sh\necho found mytool\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		file string
		args []string
		env  []string
		want string
	}{
		{"inherit", "sh", []string{"-c", "echo $CHILDPROC_INHERITED"}, nil, "yes\n"},
		{"empty", "/usr/bin/env", nil, []string{}, ""},
		{"replace", "/usr/bin/env", nil, []string{"A=1", "B=2"}, "A=1\nB=2\n"},
		// Node looks the program up in the child's PATH, not the parent's.
		{"path-of-child", "mytool", nil, []string{"PATH=" + dir}, "found mytool\n"},
		// Stale channel variables are dropped; NODE_UNIQUE_ID stays without IPC.
		{"channel-vars", "/usr/bin/env", nil, []string{"NODE_CHANNEL_FD=9", "NODE_CHANNEL_SERIALIZATION_MODE=advanced", "NODE_UNIQUE_ID=1", "X=y"}, "NODE_UNIQUE_ID=1\nX=y\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := output(t, spawn(t, tt.file, tt.args, childproc.Options{Env: tt.env}))
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestSpawnDirArgv0Shell(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "local.sh"), []byte("#!/bin/sh\npwd\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	home := os.Getenv("HOME")
	tests := []struct {
		name      string
		file      string
		args      []string
		opts      childproc.Options
		want      string
		spawnArgs []string
	}{
		{"dir", "pwd", nil, childproc.Options{Dir: dir}, dir + "\n", []string{"pwd"}},
		{"relative-to-dir", "./local.sh", nil, childproc.Options{Dir: dir}, dir + "\n", []string{"./local.sh"}},
		{"argv0", "cat", []string{"/proc/self/cmdline"}, childproc.Options{Argv0: "myname"}, "myname\x00/proc/self/cmdline\x00", []string{"myname", "/proc/self/cmdline"}},
		// Node's shell: true joins with spaces and does not quote.
		{"shell", "echo", []string{"a  b", "$HOME", `"q"`}, childproc.Options{Shell: childproc.DefaultShell}, "a b " + home + " q\n",
			[]string{"/bin/sh", "-c", `echo a  b $HOME "q"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := spawn(t, tt.file, tt.args, tt.opts)
			got, err := output(t, c)
			if err != nil || got != tt.want {
				t.Errorf("got %q, %v; want %q", got, err, tt.want)
			}
			if sa := c.SpawnArgs(); strings.Join(sa, "|") != strings.Join(tt.spawnArgs, "|") {
				t.Errorf("SpawnArgs() = %q, want %q", sa, tt.spawnArgs)
			}
		})
	}
}

func TestSpawnErrors(t *testing.T) {
	dir := t.TempDir()
	noExec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(noExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		file    string
		args    []string
		opts    childproc.Options
		errno   syscall.Errno
		is      error
		message string
	}{
		{"ENOENT", "no-such-cmd-childproc", []string{"a", "b"}, childproc.Options{}, syscall.ENOENT, fs.ErrNotExist, "spawn no-such-cmd-childproc ENOENT"},
		{"ENOENT-absolute", "/no/such/cmd", nil, childproc.Options{}, syscall.ENOENT, fs.ErrNotExist, "spawn /no/such/cmd ENOENT"},
		{"ENOENT-not-in-child-PATH", "sh", nil, childproc.Options{Env: []string{"PATH=" + dir}}, syscall.ENOENT, fs.ErrNotExist, "spawn sh ENOENT"},
		{"EACCES", noExec, nil, childproc.Options{}, syscall.EACCES, fs.ErrPermission, "spawn " + noExec + " EACCES"},
		{"EACCES-directory", dir, nil, childproc.Options{}, syscall.EACCES, fs.ErrPermission, "spawn " + dir + " EACCES"},
		// Like Node, a missing cwd blames the command (path is the file).
		{"missing-dir", "echo", nil, childproc.Options{Dir: "/no/such/dir"}, syscall.ENOENT, fs.ErrNotExist, "spawn echo ENOENT (chdir /no/such/dir)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := childproc.Spawn(t.Context(), tt.file, tt.args, tt.opts)
			if c != nil {
				t.Fatalf("got a child (pid %d), want an error", c.PID())
			}
			var se *childproc.SpawnError
			if !errors.As(err, &se) {
				t.Fatalf("got %T %v, want *SpawnError", err, err)
			}
			if se.Errno != tt.errno || se.Code() != tt.errno.Error() && se.Code() != errnoCode(tt.errno) {
				t.Errorf("Errno = %v (%s), want %v", se.Errno, se.Code(), tt.errno)
			}
			if !errors.Is(err, tt.is) || !errors.Is(err, tt.errno) {
				t.Errorf("errors.Is(%v, %v/%v) = false, want true", err, tt.is, tt.errno)
			}
			if se.Error() != tt.message || se.Path != tt.file || se.Syscall != "spawn "+tt.file {
				t.Errorf("got %q (path %q, syscall %q), want %q", se.Error(), se.Path, se.Syscall, tt.message)
			}
			if strings.Join(se.Args, " ") != strings.Join(tt.args, " ") {
				t.Errorf("Args = %q, want %q", se.Args, tt.args)
			}
		})
	}
	invalid := []struct {
		name string
		file string
		args []string
		opts childproc.Options
	}{
		{"empty-file", "", nil, childproc.Options{}},
		{"nul-arg", "echo", []string{"a\x00b"}, childproc.Options{}},
		{"nul-env", "echo", nil, childproc.Options{Env: []string{"A=\x00"}}},
		{"nul-argv0", "echo", nil, childproc.Options{Argv0: "x\x00"}},
	}
	for _, tt := range invalid {
		t.Run(tt.name, func(t *testing.T) {
			_, err := childproc.Spawn(t.Context(), tt.file, tt.args, tt.opts)
			if !errors.Is(err, childproc.ErrInvalidArgument) {
				t.Errorf("got %v, want ErrInvalidArgument", err)
			}
		})
	}
}

func errnoCode(e syscall.Errno) string {
	return map[syscall.Errno]string{syscall.ENOENT: "ENOENT", syscall.EACCES: "EACCES", syscall.EPERM: "EPERM"}[e]
}

func TestSpawnExitCodeAndSignal(t *testing.T) {
	tests := []struct {
		name   string
		script string
		code   int
		signal syscall.Signal
	}{
		{"ok", "exit 0", 0, 0},
		{"code", "exit 3", 3, 0},
		{"signal", "kill -KILL $$", -1, syscall.SIGKILL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := spawn(t, "sh", []string{"-c", tt.script}, childproc.Options{Stdin: childproc.Ignore()})
			_, err := output(t, c)
			if c.ExitCode() != tt.code || c.ExitSignal() != tt.signal || c.Killed() {
				t.Errorf("ExitCode, ExitSignal, Killed = %d, %v, %v; want %d, %v, false", c.ExitCode(), c.ExitSignal(), c.Killed(), tt.code, tt.signal)
			}
			if tt.code == 0 {
				if err != nil {
					t.Errorf("Wait = %v, want nil", err)
				}
				return
			}
			var ee *childproc.ExitError
			if !errors.As(err, &ee) || ee.Code != tt.code || ee.Signal != tt.signal || ee.Killed || ee.Cause != nil || ee.PID != c.PID() {
				t.Errorf("Wait = %#v, want ExitError{Code: %d, Signal: %v}", err, tt.code, tt.signal)
			}
		})
	}
}

func TestKill(t *testing.T) {
	c := spawn(t, "cat", nil, childproc.Options{Stdout: childproc.Ignore()})
	if c.ExitCode() != -1 {
		t.Errorf("ExitCode() while running = %d, want -1", c.ExitCode())
	}
	if err := c.Kill(0); err != nil || !c.Killed() {
		t.Fatalf("Kill(0) = %v, Killed() = %v; want nil, true (Node: kill(0) counts)", err, c.Killed())
	}
	if err := c.KillGroup(syscall.SIGKILL); !errors.Is(err, childproc.ErrNoProcessGroup) {
		t.Errorf("KillGroup without a group = %v, want ErrNoProcessGroup", err)
	}
	if err := c.Kill(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-c.Exited()
	if err := c.Kill(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Kill after exit = %v, want os.ErrProcessDone (Node: false)", err)
	}
	var ee *childproc.ExitError
	if err := c.Wait(t.Context()); !errors.As(err, &ee) || ee.Signal != syscall.SIGTERM || !ee.Killed || ee.Cause != nil {
		t.Errorf("Wait = %v, want signal SIGTERM, killed", err)
	}
}

func TestSpawnTimeoutAndContext(t *testing.T) {
	tests := []struct {
		name   string
		opts   childproc.Options
		cancel bool
		signal syscall.Signal
		cause  error
	}{
		{"timeout-SIGTERM", childproc.Options{Timeout: 20e6}, false, syscall.SIGTERM, childproc.ErrTimeout},
		{"timeout-SIGKILL", childproc.Options{Timeout: 20e6, KillSignal: syscall.SIGKILL}, false, syscall.SIGKILL, childproc.ErrTimeout},
		{"context", childproc.Options{}, true, syscall.SIGTERM, context.Canceled},
		{"context-SIGINT", childproc.Options{KillSignal: syscall.SIGINT}, true, syscall.SIGINT, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			tt.opts.Stdout = childproc.Ignore()
			c, err := childproc.Spawn(ctx, "cat", nil, tt.opts) // cat waits for stdin, which stays open
			if err != nil {
				t.Fatal(err)
			}
			cleanupChild(t, c)
			if tt.cancel {
				cancel()
			}
			err = c.Wait(t.Context())
			var ee *childproc.ExitError
			if !errors.As(err, &ee) || ee.Signal != tt.signal || ee.Code != -1 || !ee.Killed || !errors.Is(err, tt.cause) {
				t.Errorf("Wait = %#v, want signal %v, killed, cause %v", err, tt.signal, tt.cause)
			}
		})
	}
	t.Run("already-cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if c, err := childproc.Spawn(ctx, "cat", nil, childproc.Options{}); c != nil || !errors.Is(err, context.Canceled) {
			t.Errorf("Spawn = %v, %v; want nil, context.Canceled", c, err)
		}
	})
}

func TestForceKillDelay(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// The child ignores SIGTERM (exec keeps an ignored disposition).
	c, err := childproc.Spawn(ctx, "sh", []string{"-c", `trap "" TERM; echo ready; exec sleep 1000`},
		childproc.Options{ForceKillDelay: 20e6})
	if err != nil {
		t.Fatal(err)
	}
	cleanupChild(t, c)
	line, _ := bufio.NewReader(c.Stdout()).ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("got %q, want ready", line)
	}
	cancel()
	io.Copy(io.Discard, c.Stdout())
	var ee *childproc.ExitError
	if err := c.Wait(t.Context()); !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL || !errors.Is(err, context.Canceled) {
		t.Errorf("Wait = %v, want SIGKILL after the ignored SIGTERM, cause context.Canceled", err)
	}
}

// readPID reads one decimal pid line.
func readPID(t *testing.T, r *bufio.Reader) int {
	t.Helper()
	line, err := r.ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		t.Fatalf("read pid: %q, %v, %v", line, err, perr)
	}
	return pid
}

// TestKillGroup shows Node's behaviour (Kill reaches only the direct child,
// a shell's background job survives) and KillGroup, which kills the job.
func TestKillGroup(t *testing.T) {
	hold, holdW := pipe(t) // the grandchild holds holdW: EOF on hold means it died
	c := spawn(t, "sh", []string{"-c", "sleep 1000 & echo $!; wait"},
		childproc.Options{ProcessGroup: true, ExtraFiles: []*os.File{holdW}, Stdin: childproc.Ignore()})
	holdW.Close()
	out := bufio.NewReader(c.Stdout())
	grandchild := readPID(t, out)
	if err := c.Kill(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-c.Exited()
	if !alive(grandchild) {
		t.Fatalf("grandchild %d died with its parent; want it orphaned, as in Node", grandchild)
	}
	if err := c.KillGroup(syscall.SIGKILL); err != nil {
		t.Fatalf("KillGroup after the leader exited = %v, want nil (the group still has a member)", err)
	}
	// EOF on hold: the grandchild's copy of holdW is closed, which sleep
	// does only by exiting.
	io.Copy(io.Discard, hold)
	io.Copy(io.Discard, out)
	<-c.Done()
}

func TestDoneWaitsForStdio(t *testing.T) {
	c := spawn(t, "sh", []string{"-c", "sleep 1000 & echo started"}, childproc.Options{ProcessGroup: true, Stdin: childproc.Ignore()})
	out := bufio.NewReader(c.Stdout())
	if line, _ := out.ReadString('\n'); line != "started\n" {
		t.Fatalf("got %q", line)
	}
	<-c.Exited() // 'exit': the shell is gone, but its job still holds stdout
	select {
	case <-c.Done():
		t.Fatal("Done before stdout reached EOF, want Node's 'close' semantics")
	default:
	}
	c.KillGroup(syscall.SIGKILL)
	io.Copy(io.Discard, out)
	<-c.Done()
	if c.ExitCode() != 0 || c.Killed() != true {
		t.Errorf("ExitCode, Killed = %d, %v; want 0, true", c.ExitCode(), c.Killed())
	}
}

// procStat returns pid, pgrp and session of the process whose
// /proc/<pid>/stat is s.
func procStat(t *testing.T, s string) (pid, pgrp, sid int) {
	t.Helper()
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	pid, _ = strconv.Atoi(strings.Fields(s)[0])
	pgrp, _ = strconv.Atoi(f[2])
	sid, _ = strconv.Atoi(f[3])
	return
}

func TestDetachedAndProcessGroup(t *testing.T) {
	ourPgrp, ourSid := syscall.Getpgrp(), getsid(t)
	tests := []struct {
		name               string
		opts               childproc.Options
		ownGroup, ownSessn bool
	}{
		{"default", childproc.Options{}, false, false},
		{"process-group", childproc.Options{ProcessGroup: true}, true, false},
		{"detached", childproc.Options{Detached: true}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := output(t, spawn(t, "cat", []string{"/proc/self/stat"}, tt.opts))
			if err != nil {
				t.Fatal(err)
			}
			pid, pgrp, sid := procStat(t, got)
			if (pgrp == pid) != tt.ownGroup || (!tt.ownGroup && pgrp != ourPgrp) {
				t.Errorf("pgrp = %d (pid %d, ours %d), want own group %v", pgrp, pid, ourPgrp, tt.ownGroup)
			}
			if (sid == pid) != tt.ownSessn || (!tt.ownSessn && sid != ourSid) {
				t.Errorf("sid = %d (pid %d, ours %d), want own session %v", sid, pid, ourSid, tt.ownSessn)
			}
		})
	}
}

func getsid(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	_, _, sid := procStat(t, string(b))
	return sid
}

func TestCredential(t *testing.T) {
	if os.Getuid() != 0 {
		// Unprivileged, as in Node: the spawn fails with EPERM.
		_, err := childproc.Spawn(t.Context(), "id", nil, childproc.Options{Credential: &childproc.Credential{UID: 0, GID: 0}})
		if !errors.Is(err, fs.ErrPermission) || !errors.Is(err, syscall.EPERM) {
			t.Fatalf("got %v, want EPERM", err)
		}
		return
	}
	got, err := output(t, spawn(t, "id", nil, childproc.Options{Credential: &childproc.Credential{UID: 65534, GID: 65534}}))
	if want := "uid=65534"; err != nil || !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "groups=65534\n") && !strings.HasSuffix(got, "groups=65534(nogroup)\n") && !strings.Contains(got, "groups=65534(") {
		t.Errorf("id = %q, %v; want uid 65534 and only group 65534", got, err)
	}
	// Unprivileged EPERM, from a copy of the test binary run as nobody.
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	bin := filepath.Join(dir, "childproc.test")
	copyFile(t, os.Args[0], bin)
	got, err = output(t, spawn(t, bin, nil, helperOpts("spawn-as-root", childproc.Options{Credential: &childproc.Credential{UID: 65534, GID: 65534}})))
	if want := "EPERM spawn /bin/true EPERM true"; err != nil || got != want {
		t.Errorf("unprivileged spawn as root: got %q, %v; want %q", got, err, want)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err == nil {
		err = os.WriteFile(to, b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestPdeathsig(t *testing.T) {
	hold, holdW := pipe(t)
	// The middle process starts `sleep` with Pdeathsig and exits at once;
	// the sleep must then die too, closing its copy of holdW.
	middle := spawn(t, os.Args[0], nil, helperOpts("pdeathsig-middle", childproc.Options{ExtraFiles: []*os.File{holdW}}))
	holdW.Close()
	got, err := output(t, middle)
	if err != nil {
		t.Fatal(err)
	}
	grandchild, _ := strconv.Atoi(strings.TrimSpace(got))
	if grandchild <= 0 {
		t.Fatalf("middle process printed %q, want a pid", got)
	}
	// EOF: every holder of holdW, the sleeping grandchild included, exited.
	io.Copy(io.Discard, hold)
}
