package host_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/procxy/procxy/childproc"
	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/host/internal/testworker"
)

// procField returns a line's value in /proc/<pid>/<file>, its spaces folded.
func procField(t *testing.T, pid int, file, pattern string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + pattern + `[ \t]*(.*)$`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("no %q in /proc/%d/%s:\n%s", pattern, pid, file, b)
	}
	return strings.Join(strings.Fields(m[1]), " ")
}

// TestIsolation: a module's child runs under Config.Isolation — its user
// (as root), no_new_privs and limits read from /proc — and still serves
// calls.
func TestIsolation(t *testing.T) {
	w := testWorker(testworker.ModeOK)
	iso := host.Isolation{NoNewPrivs: true, Limits: childproc.Limits{OpenFiles: 128}}
	want := map[string]string{"NoNewPrivs:": "1"}
	if os.Getuid() == 0 {
		w.path = worldExecutable(t, w.path)
		iso.RunAs = &childproc.Credential{UID: 65534, GID: 65534}
		want["Uid:"] = "65534 65534 65534 65534"
		want["Gid:"] = "65534 65534 65534 65534"
	}
	cfg := config(w, newLogSink())
	cfg.Dir = "/"
	cfg.Isolation = iso
	m, _ := spawn(t, cfg)
	if got, err := host.Call[string](t.Context(), m, "echo", "isolated"); err != nil || got != "isolated" {
		t.Fatalf("echo = %q, %v", got, err)
	}
	for field, v := range want {
		if got := procField(t, m.PID(), "status", field); got != v {
			t.Errorf("child %s %q, want %q", field, got, v)
		}
	}
	if got := procField(t, m.PID(), "limits", "Max open files"); got != "128 128 files" {
		t.Errorf("child's open-files limit = %q, want 128", got)
	}
}

// TestIsolationLimits: Config.Isolation.Limits reach the child.
func TestIsolationLimits(t *testing.T) {
	cfg := config(testWorker(testworker.ModeOK), newLogSink())
	cfg.Isolation.Limits = childproc.Limits{AddressSpace: 4 << 30, CPUTime: time.Minute, OpenFiles: 128}
	m, _ := spawn(t, cfg)
	for pattern, want := range map[string]string{
		"Max address space": "4294967296 4294967296 bytes",
		"Max cpu time":      "60 61 seconds",
		"Max open files":    "128 128 files",
	} {
		if got := procField(t, m.PID(), "limits", pattern); got != want {
			t.Errorf("child %s = %q, want %q", pattern, got, want)
		}
	}
	cfg.Isolation.Limits.OpenFiles = -1
	if _, err := host.NewModule(cfg); err == nil || !strings.Contains(err.Error(), "negative limit") {
		t.Errorf("negative limit: got %v, want an invalid config", err)
	}
}

// TestIsolationRunAsDenied: a module whose child may not start as the
// RunAs user (as root: the program is not theirs to run; otherwise: no
// privilege to change ids) fails to spawn with a permission error.
func TestIsolationRunAsDenied(t *testing.T) {
	cfg := config(testWorker(testworker.ModeOK), newLogSink())
	cfg.Dir = "/"
	cfg.Isolation.RunAs = &childproc.Credential{UID: 0, GID: 0}
	if os.Getuid() == 0 {
		cfg.Executable = privateExecutable(t, cfg.Executable)
		cfg.Isolation.RunAs = &childproc.Credential{UID: 65534, GID: 65534}
	}
	m, _ := newModule(t, cfg)
	if err := m.Spawn(t.Context()); !errors.Is(err, os.ErrPermission) {
		t.Errorf("Spawn = %v, want an error matching os.ErrPermission", err)
	}
}

// worldExecutable copies the program at path where any user may run it.
func worldExecutable(t *testing.T, path string) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return copyProgram(t, path, filepath.Join(dir, filepath.Base(path)), 0o755)
}

// privateExecutable copies the program at path where only root may run it.
func privateExecutable(t *testing.T, path string) string {
	t.Helper()
	dir := filepath.Dir(worldExecutable(t, path))
	return copyProgram(t, path, filepath.Join(dir, "private"), 0o700)
}

func copyProgram(t *testing.T, from, to string, mode os.FileMode) string {
	t.Helper()
	b, err := os.ReadFile(from)
	if err == nil {
		err = os.WriteFile(to, b, mode)
	}
	if err != nil {
		t.Fatal(err)
	}
	return to
}
