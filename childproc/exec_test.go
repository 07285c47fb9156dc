//go:build linux

package childproc_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/procxy/procxy/childproc"
)

func TestExec(t *testing.T) {
	stdout, stderr, err := childproc.Exec(t.Context(), "echo out; echo err >&2", childproc.Options{})
	if err != nil || string(stdout) != "out\n" || string(stderr) != "err\n" {
		t.Errorf("Exec = %q, %q, %v; want out, err, nil", stdout, stderr, err)
	}
	stdout, _, err = childproc.Exec(t.Context(), "cat", childproc.Options{Input: []byte("input")})
	if err != nil || string(stdout) != "input" {
		t.Errorf("Exec(cat) with Input = %q, %v; want input", stdout, err)
	}
	stdout, _, err = childproc.ExecFile(t.Context(), "cat", nil, childproc.Options{})
	if err != nil || len(stdout) != 0 {
		t.Errorf("ExecFile(cat) without Input = %q, %v; want empty (stdin is the null device)", stdout, err)
	}
	// Unlike Node, which ignores them for exec/execFile, Argv0 and Detached apply.
	stdout, _, err = childproc.ExecFile(t.Context(), "cat", []string{"/proc/self/cmdline"}, childproc.Options{Argv0: "renamed"})
	if err != nil || string(stdout) != "renamed\x00/proc/self/cmdline\x00" {
		t.Errorf("ExecFile with Argv0 = %q, %v", stdout, err)
	}
	stdout, _, err = childproc.ExecFile(t.Context(), "cat", []string{"/proc/self/stat"}, childproc.Options{Detached: true})
	if pid, _, sid := procStat(t, string(stdout)); err != nil || pid != sid {
		t.Errorf("ExecFile with Detached: sid %d, pid %d, %v; want a new session", sid, pid, err)
	}
	stdout, _, err = childproc.Exec(t.Context(), "echo $BASH_VERSION", childproc.Options{Shell: "/bin/bash"})
	if err != nil || len(stdout) < 3 {
		t.Errorf("Exec with Shell bash = %q, %v; want a bash version", stdout, err)
	}
}

// TestExecFailures checks Node's error shapes for a failed command.
func TestExecFailures(t *testing.T) {
	tests := []struct {
		name           string
		cmd            string
		code           int
		signal         syscall.Signal
		stdout, stderr string
	}{
		{"exit-code", "echo out; echo err >&2; exit 3", 3, 0, "out\n", "err\n"},
		{"not-found", "no-such-cmd-childproc", 127, 0, "", "not found"},
		{"signal-not-from-us", "kill -KILL $$", -1, syscall.SIGKILL, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := childproc.Exec(t.Context(), tt.cmd, childproc.Options{})
			var xe *childproc.ExecError
			var ee *childproc.ExitError
			if !errors.As(err, &xe) || !errors.As(err, &ee) {
				t.Fatalf("got %T %v, want *ExecError wrapping *ExitError", err, err)
			}
			if xe.Cmd != tt.cmd || ee.Code != tt.code || ee.Signal != tt.signal || ee.Killed || ee.Cause != nil {
				t.Errorf("got cmd %q code %d signal %v killed %v; want %q %d %v false", xe.Cmd, ee.Code, ee.Signal, ee.Killed, tt.cmd, tt.code, tt.signal)
			}
			if string(stdout) != tt.stdout || !strings.Contains(string(stderr), tt.stderr) ||
				string(xe.Stdout) != string(stdout) || string(xe.Stderr) != string(stderr) {
				t.Errorf("got stdout %q stderr %q, want %q and %q", stdout, stderr, tt.stdout, tt.stderr)
			}
			if msg := err.Error(); !strings.HasPrefix(msg, "Command failed: "+tt.cmd) || !strings.HasSuffix(msg, "\n"+string(stderr)) && len(stderr) > 0 {
				t.Errorf("message %q, want Node's \"Command failed: <cmd>…\\n<stderr>\"", msg)
			}
		})
	}
}

func TestExecFileENOENT(t *testing.T) {
	stdout, stderr, err := childproc.ExecFile(t.Context(), "no-such-cmd-childproc", []string{"x"}, childproc.Options{})
	var xe *childproc.ExecError
	var se *childproc.SpawnError
	if !errors.As(err, &xe) || !errors.As(err, &se) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %T %v, want *ExecError wrapping a *SpawnError ENOENT", err, err)
	}
	if xe.Cmd != "no-such-cmd-childproc x" || se.Code() != "ENOENT" || se.Syscall != "spawn no-such-cmd-childproc" ||
		len(se.Args) != 1 || se.Args[0] != "x" || len(stdout) != 0 || len(stderr) != 0 {
		t.Errorf("got cmd %q, %+v, stdout %q, stderr %q", xe.Cmd, se, stdout, stderr)
	}
}

func TestExecMaxBuffer(t *testing.T) {
	tests := []struct {
		name     string
		cmd      string
		max      int
		wantOut  int    // bytes kept of the overflowing (or only) stream
		overflow string // "", "stdout" or "stderr"
	}{
		{"exactly-max", "head -c 1000 /dev/zero", 1000, 1000, ""},
		{"max-plus-one", "head -c 1001 /dev/zero", 1000, 1000, "stdout"},
		{"stderr", "head -c 2000 /dev/zero >&2", 1000, 1000, "stderr"},
		{"default-1MiB", "head -c 2000000 /dev/zero", 0, 1 << 20, "stdout"},
		{"unlimited", "head -c 2000000 /dev/zero", -1, 2000000, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := childproc.Exec(t.Context(), tt.cmd, childproc.Options{MaxBuffer: tt.max})
			got := len(stdout)
			if tt.overflow == "stderr" {
				got = len(stderr)
			}
			if got != tt.wantOut {
				t.Errorf("kept %d bytes, want %d", got, tt.wantOut)
			}
			if tt.overflow == "" {
				if err != nil {
					t.Errorf("got %v, want nil", err)
				}
				return
			}
			var mbe *childproc.MaxBufferError
			if !errors.Is(err, childproc.ErrMaxBuffer) || !errors.As(err, &mbe) || mbe.Stream != tt.overflow {
				t.Fatalf("got %v, want a %s MaxBufferError", err, tt.overflow)
			}
			if want := tt.overflow + " maxBuffer length exceeded"; !strings.Contains(err.Error(), want) {
				t.Errorf("message %q, want it to contain %q", err, want)
			}
		})
	}
	t.Run("child-killed", func(t *testing.T) {
		_, _, err := childproc.ExecFile(t.Context(), "yes", nil, childproc.Options{MaxBuffer: 10000, KillSignal: syscall.SIGKILL})
		var ee *childproc.ExitError
		if !errors.As(err, &ee) || !ee.Killed || ee.Signal != syscall.SIGKILL || !errors.Is(err, childproc.ErrMaxBuffer) {
			t.Errorf("got %v, want the endless writer killed with SIGKILL", err)
		}
	})
}

func TestExecTimeout(t *testing.T) {
	tests := []struct {
		name   string
		signal syscall.Signal
		want   syscall.Signal
	}{
		{"default-SIGTERM", 0, syscall.SIGTERM},
		{"SIGKILL", syscall.SIGKILL, syscall.SIGKILL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := childproc.ExecFile(t.Context(), "sleep", []string{"1000"}, childproc.Options{Timeout: 20e6, KillSignal: tt.signal})
			var ee *childproc.ExitError
			if !errors.As(err, &ee) || ee.Code != -1 || ee.Signal != tt.want || !ee.Killed || !errors.Is(err, childproc.ErrTimeout) {
				t.Errorf("got %#v, want code -1, signal %v, killed, ErrTimeout (Node: code null, killed true)", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "Command failed: sleep 1000") {
				t.Errorf("message %q", err)
			}
		})
	}
}

// TestExecGrandchild cancels an Exec whose shell has a background job:
// as in Node only the shell dies, unless KillGroup is set.
func TestExecGrandchild(t *testing.T) {
	for _, killGroup := range []bool{false, true} {
		name := map[bool]string{false: "node-semantics", true: "KillGroup"}[killGroup]
		t.Run(name, func(t *testing.T) {
			hold, holdW := pipe(t)   // the job holds holdW: EOF on hold means it died
			ready, readyW := pipe(t) // the shell writes the job's pid here
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			errc := make(chan error, 1)
			go func() {
				_, _, err := childproc.Exec(ctx, "sleep 1000 4>&- & echo $! >&4; exec 4>&-; wait",
					childproc.Options{KillGroup: killGroup, ExtraFiles: []*os.File{holdW, readyW}})
				errc <- err
			}()
			grandchild := readPID(t, bufio.NewReader(ready))
			cancel()
			err := <-errc
			holdW.Close()
			if !errors.Is(err, context.Canceled) {
				t.Errorf("got %v, want context.Canceled", err)
			}
			if !killGroup {
				if !alive(grandchild) {
					t.Errorf("background job %d died, want it orphaned as in Node", grandchild)
				}
				syscall.Kill(grandchild, syscall.SIGKILL)
			}
			// EOF on hold means every copy of holdW is closed: sleep never
			// closes it, so the job has exited. (/proc may still show it
			// running through its exit for a moment.)
			io.Copy(io.Discard, hold)
		})
	}
}

func TestExecEncoding(t *testing.T) {
	tests := []struct {
		enc  childproc.Encoding
		want string
	}{
		{childproc.EncodingBuffer, "\xffA\xc3\xa9"},
		{childproc.EncodingUTF8, "\ufffdAé"},
		{childproc.EncodingLatin1, "ÿAÃ©"},
		{childproc.EncodingHex, "ff41c3a9"},
		{childproc.EncodingBase64, "/0HDqQ=="},
	}
	for _, tt := range tests {
		t.Run(tt.enc.String(), func(t *testing.T) {
			stdout, stderr, err := childproc.Exec(t.Context(), `printf '\377A\303\251'; printf '\377A\303\251' >&2`, childproc.Options{Encoding: tt.enc})
			if err != nil || string(stdout) != tt.want || string(stderr) != tt.want {
				t.Errorf("got %q, %q, %v; want %q twice", stdout, stderr, err, tt.want)
			}
		})
	}
}
