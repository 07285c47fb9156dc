//go:build linux

package childproc_test

import (
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
