// Package tlstransport adds TLS to package transport's TCP connections.
// It is a package of its own so that programs that do not use TLS do not
// link crypto/tls.
package tlstransport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"

	"github.com/procxy/procxy/transport"
)

// Listen listens on the TCP address addr and wraps accepted connections in
// TLS using cfg, which must hold a certificate (Certificates, GetCertificate
// or GetConfigForClient). The handshake runs on the first Read or Write of an
// accepted connection, or when the caller calls [tls.Conn.HandshakeContext].
func Listen(addr string, cfg *tls.Config) (net.Listener, error) {
	if cfg == nil || len(cfg.Certificates) == 0 && cfg.GetCertificate == nil && cfg.GetConfigForClient == nil {
		return nil, errors.New("tlstransport: listen: config has no certificate")
	}
	ln, err := transport.ListenTCP(addr)
	if err != nil {
		return nil, err
	}
	return tls.NewListener(ln, cfg), nil
}

// Dial connects to the TCP address addr and completes a TLS handshake using
// cfg, giving up when ctx is done. A nil cfg means the zero config: verify
// the server against the system roots. If cfg.ServerName is empty, the host
// part of addr is used.
func Dial(ctx context.Context, addr string, cfg *tls.Config) (*tls.Conn, error) {
	d := tls.Dialer{NetDialer: &net.Dialer{KeepAliveConfig: transport.KeepAlive}, Config: cfg}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("tlstransport: %w", err)
	}
	return c.(*tls.Conn), nil
}
