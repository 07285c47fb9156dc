//go:build linux

package childproc_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
		{"negative-timeout", "echo", nil, childproc.Options{Timeout: -1}},
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
