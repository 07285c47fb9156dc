//go:build unix

package transport_test

import (
	"errors"
	"net"
	"os"
	"runtime"
	"testing"

	"github.com/procxy/procxy/transport"
)

func TestPeerCred(t *testing.T) {
	privateEnv(t)
	ln, err := transport.ListenPrivate("cred")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := transport.Dial(t.Context(), "unix", ln.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, err := ln.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	for _, end := range []struct {
		name string
		conn *net.UnixConn
	}{{"server", s}, {"client", c.(*net.UnixConn)}} {
		t.Run(end.name, func(t *testing.T) {
			uid, gid, pid, err := transport.PeerCred(end.conn)
			if runtime.GOOS != "linux" {
				if !errors.Is(err, errors.ErrUnsupported) {
					t.Fatalf("PeerCred = %v; want errors.ErrUnsupported", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if uid != os.Getuid() || gid != os.Getgid() || pid != os.Getpid() {
				t.Errorf("PeerCred = uid %d gid %d pid %d; want %d %d %d",
					uid, gid, pid, os.Getuid(), os.Getgid(), os.Getpid())
			}
		})
	}
}
