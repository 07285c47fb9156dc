package natsipc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/procxy/procxy/ipc"
)

// ServerOptions configures an embedded nats-server. The zero value is a
// standalone server on a random loopback port with ipc's defaults.
type ServerOptions struct {
	// Host is the address to listen on for clients; default "127.0.0.1".
	// Set "0.0.0.0" (with authentication) to accept other hosts.
	Host string
	// Port is the client port; zero means a random free port.
	Port int
	// Name names the server (in a cluster, each node needs its own);
	// default the server's generated id.
	Name string

	// JetStream enables JetStream, with its storage in StoreDir (default: a
	// temporary directory removed at Close).
	JetStream bool
	StoreDir  string

	// Cluster, when Cluster.Name is set, makes the server a node of a
	// cluster: it listens for routes and connects to Cluster.Routes.
	Cluster ClusterOptions

	// IPC holds the settings an ipc server has, applied to nats-server:
	// MaxPayload (ipc's 8 MiB by default, plus HeaderReserve on the wire),
	// MaxPending, MaxConnections, AuthTimeout, Heartbeat, TLS, Users,
	// Authenticate, DefaultPermissions and Logger. Users and permissions
	// become nats-server users and permissions (see the package
	// documentation). Rate limits, OnConnect/OnDisconnect, Observer and
	// DeadLetters have no nats-server counterpart: StartServer refuses
	// them rather than ignore them.
	IPC ipc.ServerOptions

	// ResponseTTL is how long after receiving a request an identity whose
	// permissions have AllowResponses may answer it (nats-server forgets
	// the reply subject then); default 10 minutes. Answers and stream
	// chunks within it are not counted.
	ResponseTTL time.Duration

	// Configure, if set, is called last with the nats-server options, for
	// anything this struct does not cover.
	Configure func(*server.Options)
}

// ClusterOptions make an embedded server a cluster node.
type ClusterOptions struct {
	Name string // the cluster's name, the same on every node; empty: no cluster
	Host string // the route listener's address; default "127.0.0.1"
	Port int    // the route listener's port; zero means a random free port
	// Routes are the route URLs (nats-route://host:port, see
	// [Server.RouteURL]) of other nodes to connect to. A node needs one
	// route to any node of the cluster; it learns the others.
	Routes []string
}

// DefaultResponseTTL is the default ServerOptions.ResponseTTL.
const DefaultResponseTTL = 10 * time.Minute

// readyTimeout bounds the wait for a server to listen when the context
// has no deadline.
const readyTimeout = 10 * time.Second

// Server is an embedded nats-server: in this process, on its own
// goroutines. It is safe for concurrent use.
type Server struct {
	ns  *server.Server
	tmp string // JetStream storage to remove at Close

	closeOnce sync.Once
	closeErr  error
}

// StartServer starts an embedded nats-server and returns when it accepts
// clients, or fails when it cannot within ctx (10 s without a deadline).
func StartServer(ctx context.Context, o ServerOptions) (*Server, error) {
	nopts, err := serverOptions(o)
	if err != nil {
		return nil, err
	}
	s := &Server{}
	if o.JetStream && nopts.StoreDir == "" {
		if s.tmp, err = os.MkdirTemp("", "natsipc-js-"); err != nil {
			return nil, fmt.Errorf("natsipc: JetStream storage: %w", err)
		}
		nopts.StoreDir = s.tmp
	}
	ns, err := server.NewServer(nopts)
	if err != nil {
		s.removeTmp()
		return nil, fmt.Errorf("natsipc: nats-server: %w", err)
	}
	s.ns = ns
	l := o.IPC.Logger
	if l == nil {
		l = slog.Default()
	}
	ns.SetLogger(slogLogger{l}, l.Enabled(ctx, slog.LevelDebug), false)
	ns.Start()
	wait := readyTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = time.Until(dl)
	}
	ready := make(chan bool, 1)
	go func() { ready <- ns.ReadyForConnections(wait) }() // returns within wait
	select {
	case ok := <-ready:
		if !ok {
			s.Close()
			return nil, fmt.Errorf("natsipc: nats-server not ready for connections within %v", wait)
		}
	case <-ctx.Done():
		<-ready
		s.Close()
		return nil, fmt.Errorf("natsipc: start nats-server: %w", ctx.Err())
	}
	return s, nil
}

// serverOptions translates o into nats-server options.
func serverOptions(o ServerOptions) (*server.Options, error) {
	ip := o.IPC
	if err := unsupported(ip); err != nil {
		return nil, err
	}
	maxPayload := ip.MaxPayload
	if maxPayload <= 0 {
		maxPayload = ipc.DefaultMaxPayload
	}
	maxPending := ip.MaxPending
	if maxPending <= 0 {
		maxPending = ipc.DefaultMaxPending
	}
	nopts := &server.Options{
		ServerName:             o.Name,
		Host:                   or(o.Host, "127.0.0.1"),
		Port:                   portOrRandom(o.Port),
		NoLog:                  true,
		NoSigs:                 true,
		MaxPayload:             int32(min(maxPayload+HeaderReserve, 1<<30)),
		MaxPending:             int64(max(maxPending, maxPayload+HeaderReserve)),
		MaxConn:                ip.MaxConnections,
		JetStream:              o.JetStream,
		StoreDir:               o.StoreDir,
		DisableJetStreamBanner: true,
	}
	switch {
	case ip.AuthTimeout > 0:
		nopts.AuthTimeout = ip.AuthTimeout.Seconds()
	case ip.AuthTimeout < 0:
		nopts.AuthTimeout = noLimit.Seconds() // nats-server has no "none"
	}
	switch hb := ip.Heartbeat; {
	case hb == 0:
		nopts.PingInterval, nopts.MaxPingsOut = ipc.DefaultHeartbeat, 2
	case hb > 0:
		nopts.PingInterval, nopts.MaxPingsOut = hb, 2
	} // negative: nats-server's own (2 minutes), since it cannot turn pings off
	if ip.TLS != nil {
		nopts.TLSConfig = ip.TLS
		nopts.TLSVerify = ip.TLS.ClientAuth == tls.RequireAndVerifyClientCert
		nopts.TLSTimeout = 2
	}
	if len(ip.Users) > 0 || ip.Authenticate != nil || ip.DefaultPermissions != nil {
		a, err := newAuthenticator(ip, or(o.ResponseTTL, DefaultResponseTTL))
		if err != nil {
			return nil, err
		}
		nopts.CustomClientAuthentication = a
	}
	if c := o.Cluster; c.Name != "" {
		nopts.Cluster = server.ClusterOpts{Name: c.Name, Host: or(c.Host, "127.0.0.1"), Port: portOrRandom(c.Port)}
		for _, r := range c.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("natsipc: cluster route %q: %w", r, err)
			}
			nopts.Routes = append(nopts.Routes, u)
		}
	}
	if o.Configure != nil {
		o.Configure(nopts)
	}
	return nopts, nil
}

// unsupported refuses the ipc server options nats-server has nothing for.
func unsupported(o ipc.ServerOptions) error {
	var bad []string
	if o.DefaultRateLimit != nil {
		bad = append(bad, "DefaultRateLimit")
	}
	for _, u := range o.Users {
		if u.RateLimit != nil {
			bad = append(bad, "Users["+u.Name+"].RateLimit")
		}
	}
	if o.OnConnect != nil {
		bad = append(bad, "OnConnect")
	}
	if o.OnDisconnect != nil {
		bad = append(bad, "OnDisconnect")
	}
	if o.Observer != nil {
		bad = append(bad, "Observer (give it to Connect)")
	}
	if o.DeadLetters != 0 {
		bad = append(bad, "DeadLetters (give it to Connect)")
	}
	if len(bad) > 0 {
		return fmt.Errorf("natsipc: nats-server has no counterpart for ipc server options %v", bad)
	}
	return nil
}

// noLimit stands for "none" where nats-server and nats.go take only a
// positive duration: a century.
const noLimit = 100 * 365 * 24 * time.Hour

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func portOrRandom(p int) int {
	if p == 0 {
		return server.RANDOM_PORT
	}
	return p
}

// URL returns the URL clients connect to, such as nats://127.0.0.1:41234.
func (s *Server) URL() string { return s.ns.ClientURL() }

// RouteURL returns the URL other cluster nodes route to
// (nats-route://host:port), or "" when the server is not a cluster node.
func (s *Server) RouteURL() string {
	a := s.ns.ClusterAddr()
	if a == nil {
		return ""
	}
	return "nats-route://" + net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port))
}

// NATS returns the nats-server itself, for what this package does not
// cover (monitoring, accounts, reloading).
func (s *Server) NATS() *server.Server { return s.ns }

// Close shuts the server down at once: clients are disconnected (and
// reconnect elsewhere if they can). It waits until the server has stopped
// and is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		if s.ns != nil {
			s.ns.Shutdown()
			s.ns.WaitForShutdown()
		}
		s.closeErr = s.removeTmp()
	})
	return s.closeErr
}

func (s *Server) removeTmp() error {
	if s.tmp == "" {
		return nil
	}
	if err := os.RemoveAll(s.tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("natsipc: remove JetStream storage: %w", err)
	}
	return nil
}

// slogLogger is nats-server's logger writing to a *slog.Logger.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) log(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if s.l.Enabled(ctx, level) {
		s.l.Log(ctx, level, "nats-server: "+fmt.Sprintf(format, v...))
	}
}

// Noticef is at debug level: nats-server's notices ("Starting
// nats-server", "Server is ready", ...) are its start-up banner, which an
// embedded server should not print to a program's default logger.
func (s slogLogger) Noticef(format string, v ...any) { s.log(slog.LevelDebug, format, v) }
func (s slogLogger) Warnf(format string, v ...any)   { s.log(slog.LevelWarn, format, v) }
func (s slogLogger) Fatalf(format string, v ...any)  { s.log(slog.LevelError, format, v) }
func (s slogLogger) Errorf(format string, v ...any)  { s.log(slog.LevelError, format, v) }
func (s slogLogger) Debugf(format string, v ...any)  { s.log(slog.LevelDebug, format, v) }
func (s slogLogger) Tracef(format string, v ...any)  { s.log(slog.LevelDebug-4, format, v) }
