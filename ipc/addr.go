package ipc

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"github.com/procxy/procxy/transport"
)

// An address names where a server listens and clients dial:
//
//	myapp                 a private per-user Unix socket named myapp.sock in
//	                      transport.SocketDir() (directory 0700, socket 0600)
//	/run/myapp.sock       a Unix socket at an explicit path (also unix:///run/myapp.sock)
//	@myapp                a Linux abstract Unix socket
//	tcp://127.0.0.1:4222  TCP
//	tls://host:4222       TCP with TLS (configure with the TLS option; set
//	                      ClientAuth on the server's config for mutual TLS)
type address struct {
	network string // "unix", "tcp" or "tls"
	addr    string // socket path or host:port
}

func (a address) String() string {
	if a.network == "unix" {
		return a.addr
	}
	return a.network + "://" + a.addr
}

// parseAddr reads an address in one of the forms above.
func parseAddr(s string) (address, error) {
	switch {
	case s == "":
		return address{}, fmt.Errorf("ipc: empty address")
	case strings.HasPrefix(s, "unix://"):
		return address{"unix", strings.TrimPrefix(s, "unix://")}, nil
	case strings.HasPrefix(s, "tcp://"):
		return hostPort("tcp", strings.TrimPrefix(s, "tcp://"))
	case strings.HasPrefix(s, "tls://"):
		return hostPort("tls", strings.TrimPrefix(s, "tls://"))
	case strings.Contains(s, "://"):
		return address{}, fmt.Errorf("ipc: address %q: unknown scheme (want unix://, tcp:// or tls://)", s)
	case strings.ContainsRune(s, '/') || s[0] == '@':
		return address{"unix", s}, nil
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return address{}, fmt.Errorf("ipc: address %q: a socket name has letters, digits, '-', '_' and '.' only", s)
		}
	}
	dir, err := transport.SocketDir()
	if err != nil {
		return address{}, fmt.Errorf("ipc: address %q: %w", s, err)
	}
	return address{"unix", filepath.Join(dir, s+".sock")}, nil
}

func hostPort(network, hp string) (address, error) {
	if _, _, err := net.SplitHostPort(hp); err != nil {
		return address{}, fmt.Errorf("ipc: address %s://%s: %w", network, hp, err)
	}
	return address{network, hp}, nil
}

// dial connects to a.
func (a address) dial(ctx context.Context, cfg *tls.Config) (net.Conn, error) {
	switch a.network {
	case "unix":
		return transport.Dial(ctx, "unix", a.addr)
	case "tcp":
		return transport.Dial(ctx, "tcp", a.addr)
	}
	c, err := transport.Dial(ctx, "tcp", a.addr)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		cfg = &tls.Config{}
	}
	if cfg.ServerName == "" && !cfg.InsecureSkipVerify {
		cfg = cfg.Clone()
		cfg.ServerName, _, _ = net.SplitHostPort(a.addr)
	}
	tc := tls.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("ipc: tls handshake with %s: %w", a.addr, err)
	}
	return tc, nil
}

// listen listens on a.
func (a address) listen(ctx context.Context, cfg *tls.Config) (net.Listener, string, error) {
	switch a.network {
	case "unix":
		ln, err := transport.ListenUnix(ctx, a.addr)
		if err != nil {
			return nil, "", err
		}
		return ln, ln.Path(), nil
	case "tcp":
		ln, err := transport.ListenTCP(a.addr)
		if err != nil {
			return nil, "", err
		}
		return ln, "tcp://" + ln.Addr().String(), nil
	}
	if cfg == nil || len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil {
		return nil, "", fmt.Errorf("ipc: listen %s: a tls:// address needs the TLS option with a certificate", a)
	}
	ln, err := transport.ListenTCP(a.addr)
	if err != nil {
		return nil, "", err
	}
	return tls.NewListener(ln, cfg), "tls://" + ln.Addr().String(), nil
}
