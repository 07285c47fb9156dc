//go:build unix

package transport_test

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/procxy/procxy/transport"
)

func TestListenPrivate(t *testing.T) {
	dir := privateEnv(t)
	ln, err := transport.ListenPrivate("tp")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	checkPrivate(t, dir)
	path := ln.Path()
	if got := ln.Addr().String(); got != path {
		t.Errorf("Addr().String() = %q, want Path() %q", got, path)
	}
	name := regexp.MustCompile(`^tp-` + strconv.Itoa(os.Getpid()) + `-[0-9a-f]{16}\.sock$`)
	if filepath.Dir(path) != dir || !name.MatchString(filepath.Base(path)) {
		t.Errorf("Path() = %q, want %s/tp-<pid>-<16 hex>.sock", path, dir)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket file mode = %v, want a socket with mode 0600", fi.Mode())
	}

	done := echoOnce(ln)
	c, err := transport.Dial(t.Context(), "unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "hello over unix")
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
}

func TestListenPrivateNamesDiffer(t *testing.T) {
	privateEnv(t)
	seen := make(map[string]bool)
	for range 20 {
		ln, err := transport.ListenPrivate("")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if seen[ln.Path()] {
			t.Fatalf("ListenPrivate returned %q twice", ln.Path())
		}
		seen[ln.Path()] = true
		if base := filepath.Base(ln.Path()); !strings.HasPrefix(base, "procxy-") {
			t.Errorf("empty prefix gave %q, want procxy-…", base)
		}
	}
}

func TestUnixListenerClose(t *testing.T) {
	privateEnv(t)
	ln, err := transport.ListenPrivate("tp")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := ln.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if _, err := os.Lstat(ln.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Close, Lstat(socket) = %v; want not exist", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept after Close = %v; want net.ErrClosed", err)
	}
}

func TestListenBadPath(t *testing.T) {
	long := "/" + strings.Repeat("x", 200)
	tests := []struct {
		name   string
		listen func() error
		want   error // nil means any error
	}{
		{"too-long", func() error { _, err := transport.ListenUnix(t.Context(), long); return err }, transport.ErrPathTooLong},
		{"empty", func() error { _, err := transport.ListenUnix(t.Context(), ""); return err }, nil},
		{"dial-too-long", func() error { _, err := transport.Dial(t.Context(), "unix", long); return err }, transport.ErrPathTooLong},
		{"prefix-slash", func() error { _, err := transport.ListenPrivate("a/b"); return err }, nil},
		{"prefix-too-long", func() error { _, err := transport.ListenPrivate(strings.Repeat("p", 120)); return err }, transport.ErrPathTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			privateEnv(t)
			err := tt.listen()
			if err == nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want an error wrapping %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "transport: ") {
				t.Errorf("error %q lacks the transport: prefix", err)
			}
		})
	}
}

// staleSocket leaves a socket file at path with nobody listening on it.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	l.Close()
}

func TestListenUnixExisting(t *testing.T) {
	tests := []struct {
		name    string
		plant   func(t *testing.T, path string) // puts something at path
		wantErr error                           // nil: ListenUnix must succeed
	}{
		{"none", func(*testing.T, string) {}, nil},
		{"stale-socket", staleSocket, nil},
		{"live-socket", func(t *testing.T, path string) {
			ln, err := transport.ListenUnix(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
		}, syscall.EADDRINUSE},
		{"regular-file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, fs.ErrExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(shortTempDir(t), "s.sock")
			tt.plant(t, path)
			ln, err := transport.ListenUnix(t.Context(), path)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("ListenUnix = %v; want an error wrapping %v", err, tt.wantErr)
				}
				if _, err := os.Lstat(path); err != nil {
					t.Errorf("ListenUnix removed the existing file: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("socket file: %v, %v; want mode 0600", fi.Mode(), err)
			}
			done := echoOnce(ln)
			c, err := transport.Dial(t.Context(), "unix", path)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			roundTrip(t, c, "fresh")
			if err := <-done; err != nil {
				t.Fatalf("server: %v", err)
			}
		})
	}
}

func TestListenUnixAbstract(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("abstract sockets are Linux-only")
	}
	name := "@procxy-test-" + strconv.Itoa(os.Getpid())
	ln, err := transport.ListenUnix(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := echoOnce(ln)
	c, err := transport.Dial(t.Context(), "unix", name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	roundTrip(t, c, "abstract")
	if err := <-done; err != nil {
		t.Fatalf("server: %v", err)
	}
}
