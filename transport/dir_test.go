//go:build unix

package transport_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/procxy/procxy/transport"
)

// checkPrivate fails t unless dir is a directory owned by us with mode 0700.
func checkPrivate(t *testing.T, dir string) {
	t.Helper()
	fi, err := os.Lstat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: got mode %v, want a directory with mode 0700", dir, fi.Mode())
	}
	if uid := fi.Sys().(*syscall.Stat_t).Uid; int(uid) != os.Getuid() {
		t.Errorf("%s: got owner %d, want %d", dir, uid, os.Getuid())
	}
}

func TestSocketDirXDG(t *testing.T) {
	want := privateEnv(t)
	got, err := transport.SocketDir()
	if err != nil || got != want {
		t.Fatalf("SocketDir() = %q, %v; want %q", got, err, want)
	}
	checkPrivate(t, got)
	again, err := transport.SocketDir() // existing directory: accepted as is
	if err != nil || again != want {
		t.Fatalf("second SocketDir() = %q, %v; want %q", again, err, want)
	}
}

func TestSocketDirFallback(t *testing.T) {
	tests := []struct {
		name string
		xdg  func(t *testing.T) string
	}{
		{"unset", func(*testing.T) string { return "" }},
		{"relative", func(*testing.T) string { return "run/user" }},
		{"missing", func(t *testing.T) string { return filepath.Join(shortTempDir(t), "nope") }},
		{"not-a-dir", func(t *testing.T) string {
			p := filepath.Join(shortTempDir(t), "file")
			if err := os.WriteFile(p, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"group-writable", func(t *testing.T) string {
			d := shortTempDir(t)
			if err := os.Chmod(d, 0o770); err != nil {
				t.Fatal(err)
			}
			return d
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmp := shortTempDir(t)
			t.Setenv("TMPDIR", tmp)
			t.Setenv("XDG_RUNTIME_DIR", tt.xdg(t))
			want := filepath.Join(tmp, "procxy-"+strconv.Itoa(os.Getuid()))
			got, err := transport.SocketDir()
			if err != nil || got != want {
				t.Fatalf("SocketDir() = %q, %v; want %q", got, err, want)
			}
			checkPrivate(t, got)
		})
	}
}

func TestSocketDirFixesMode(t *testing.T) {
	for _, mode := range []fs.FileMode{0o700, 0o755, 0o777, 0o711, 0o500} {
		t.Run(mode.String(), func(t *testing.T) {
			dir := privateEnv(t)
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, mode); err != nil {
				t.Fatal(err)
			}
			if _, err := transport.SocketDir(); err != nil {
				t.Fatalf("SocketDir() with an existing %v dir: %v", mode, err)
			}
			checkPrivate(t, dir)
		})
	}
}

func TestSocketDirRefuses(t *testing.T) {
	tests := []struct {
		name  string
		plant func(t *testing.T, dir string) // puts something at dir
	}{
		{"symlink", func(t *testing.T, dir string) {
			if err := os.Symlink(shortTempDir(t), dir); err != nil {
				t.Fatal(err)
			}
		}},
		{"file", func(t *testing.T, dir string) {
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"other-owner", func(t *testing.T, dir string) {
			if os.Getuid() != 0 {
				t.Skip("needs root to create a directory owned by another user")
			}
			if err := os.Mkdir(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := privateEnv(t)
			tt.plant(t, dir)
			before, err := os.Lstat(dir)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := transport.SocketDir(); err == nil {
				t.Fatalf("SocketDir() = %q, nil; want an error", got)
			}
			if _, err := transport.ListenPrivate("x"); err == nil {
				t.Error("ListenPrivate succeeded; want an error")
			}
			after, err := os.Lstat(dir)
			if err != nil || after.Mode() != before.Mode() {
				t.Errorf("SocketDir changed %s: mode %v, want %v untouched (err %v)", dir, after.Mode(), before.Mode(), err)
			}
		})
	}
}
