package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// KeepAlive is the TCP keepalive every connection of this package uses: the
// first probe after 15 s idle, then every 15 s, giving up after 4, so a
// vanished peer is noticed in about a minute and a half rather than the OS
// default of over two hours.
var KeepAlive = net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 15 * time.Second, Count: 4}

// ListenTCP listens on the TCP address addr ("host:port"; port 0 picks a free
// port). Accepted connections have keepalive on and Nagle's algorithm off.
func ListenTCP(addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAliveConfig: KeepAlive}
	ln, err := lc.Listen(context.Background(), "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	return ln, nil
}

// DialTCP connects to the TCP address addr, giving up when ctx is done. The
// connection has keepalive on and Nagle's algorithm off, since rpc frames are
// written whole and should leave at once.
func DialTCP(ctx context.Context, addr string) (*net.TCPConn, error) {
	return dialTCP(ctx, "tcp", addr)
}

func dialTCP(ctx context.Context, network, addr string) (*net.TCPConn, error) {
	d := net.Dialer{KeepAliveConfig: KeepAlive}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("transport: %w", err)
	}
	tc := c.(*net.TCPConn)
	if err := tc.SetNoDelay(true); err != nil { // Go's default; be explicit
		return nil, errors.Join(fmt.Errorf("transport: %w", err), tc.Close())
	}
	return tc, nil
}

// Dial connects to addr on the named network, giving up when ctx is done:
// "unix" dials a socket path (returning a *[net.UnixConn]), and "tcp",
// "tcp4" and "tcp6" dial like [DialTCP]. TLS needs a config: see package
// tlstransport.
func Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	switch network {
	case "unix":
		if err := checkPath(addr); err != nil {
			return nil, fmt.Errorf("transport: dial unix: %w", err)
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", addr)
		if err != nil {
			return nil, fmt.Errorf("transport: %w", err)
		}
		return c, nil
	case "tcp", "tcp4", "tcp6":
		c, err := dialTCP(ctx, network, addr)
		if err != nil {
			return nil, err // not c: a nil *TCPConn would make a non-nil net.Conn
		}
		return c, nil
	}
	return nil, fmt.Errorf("transport: dial: unsupported network %q", network)
}
