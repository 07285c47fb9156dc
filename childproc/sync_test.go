//go:build linux

package childproc_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/procxy/procxy/childproc"
)

func TestSpawnSync(t *testing.T) {
	tests := []struct {
		name   string
		script string
		opts   childproc.Options
		status int
		signal syscall.Signal
		stdout string
	}{
		{"status", "echo out; echo err >&2; exit 3", childproc.Options{}, 3, 0, "out\n"},
		{"signal", "kill -KILL $$", childproc.Options{}, -1, syscall.SIGKILL, ""},
		{"input", "cat", childproc.Options{Input: []byte("in")}, 0, 0, "in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := childproc.SpawnSync(t.Context(), "sh", []string{"-c", tt.script}, tt.opts)
			if err != nil || res.Status != tt.status || res.Signal != tt.signal || string(res.Stdout) != tt.stdout || res.PID <= 0 {
				t.Errorf("got %+v, %v; want status %d, signal %v, stdout %q", res, err, tt.status, tt.signal, tt.stdout)
			}
		})
	}
}

func TestSpawnSyncStdio(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := childproc.SpawnSync(t.Context(), "cat", nil, childproc.Options{Input: []byte("to file"), Stdout: childproc.FromFile(f)})
	got, _ := os.ReadFile(path)
	if err != nil || res.Stdout != nil || string(got) != "to file" {
		t.Errorf("got %+v, %v, file %q; want the output in the file", res, err, got)
	}
}

// TestSpawnSyncErrors checks Node's result.error shapes.
func TestSpawnSyncErrors(t *testing.T) {
	tests := []struct {
		name   string
		file   string
		args   []string
		opts   childproc.Options
		errno  syscall.Errno
		is     error
		signal syscall.Signal
	}{
		{"ENOENT", "no-such-cmd-childproc", []string{"a"}, childproc.Options{}, syscall.ENOENT, fs.ErrNotExist, 0},
		{"ETIMEDOUT", "sleep", []string{"1000"}, childproc.Options{Timeout: 20e6}, syscall.ETIMEDOUT, childproc.ErrTimeout, syscall.SIGTERM},
		{"ENOBUFS", "yes", nil, childproc.Options{MaxBuffer: 1000, KillSignal: syscall.SIGKILL}, syscall.ENOBUFS, childproc.ErrMaxBuffer, syscall.SIGKILL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := childproc.SpawnSync(t.Context(), tt.file, tt.args, tt.opts)
			var se *childproc.SpawnError
			if !errors.As(err, &se) || se.Errno != tt.errno || !errors.Is(err, tt.errno) || !errors.Is(err, tt.is) {
				t.Fatalf("got %v, want a SpawnError %v matching %v", err, tt.errno, tt.is)
			}
			if se.Syscall != "spawnSync "+tt.file || se.Path != tt.file {
				t.Errorf("got syscall %q path %q", se.Syscall, se.Path)
			}
			if res.Status != -1 || res.Signal != tt.signal {
				t.Errorf("got status %d signal %v, want -1 and %v", res.Status, res.Signal, tt.signal)
			}
			if tt.errno == syscall.ENOENT && (res.PID != 0 || res.Stdout != nil) {
				t.Errorf("got %+v, want pid 0 and no output", res)
			}
			if tt.errno == syscall.ENOBUFS && len(res.Stdout) != 1000 {
				t.Errorf("kept %d bytes, want exactly MaxBuffer", len(res.Stdout))
			}
		})
	}
}

func TestExecSync(t *testing.T) {
	out, err := childproc.ExecSync(t.Context(), "echo hello", childproc.Options{})
	if err != nil || string(out) != "hello\n" {
		t.Errorf("ExecSync = %q, %v", out, err)
	}
	out, err = childproc.ExecFileSync(t.Context(), "cat", nil, childproc.Options{Input: []byte("in")})
	if err != nil || string(out) != "in" {
		t.Errorf("ExecFileSync with Input = %q, %v", out, err)
	}
	out, err = childproc.ExecSync(t.Context(), "echo out; echo err >&2; exit 4", childproc.Options{})
	var xe *childproc.ExecError
	var ee *childproc.ExitError
	if !errors.As(err, &xe) || !errors.As(err, &ee) || ee.Code != 4 || string(out) != "out\n" ||
		string(xe.Stderr) != "err\n" || !strings.HasSuffix(err.Error(), "\nerr\n") {
		t.Errorf("ExecSync failing = %q, %v; want status 4 with stdout and stderr", out, err)
	}
	_, err = childproc.ExecFileSync(t.Context(), "no-such-cmd-childproc", nil, childproc.Options{})
	var se *childproc.SpawnError
	if !errors.As(err, &se) || se.Syscall != "spawnSync no-such-cmd-childproc" || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ExecFileSync ENOENT = %v", err)
	}
	_, err = childproc.ExecSync(t.Context(), "sleep 1000", childproc.Options{Timeout: 20e6, KillSignal: syscall.SIGKILL, KillGroup: true})
	if !errors.Is(err, syscall.ETIMEDOUT) || !errors.Is(err, childproc.ErrTimeout) {
		t.Errorf("ExecSync timeout = %v, want ETIMEDOUT", err)
	}
}
