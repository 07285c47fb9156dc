package cli

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/natsipc"
)

func ipcServeCommand() *command {
	return &command{
		name:    "ipc serve",
		summary: "run an ipc server, or an embedded nats-server",
		usage: `usage: procxy ipc serve [flags]

Serve runs an ipc server on -server ADDR until Ctrl-C or SIGTERM, then
shuts it down gracefully: it takes no new requests, lets those in flight
finish (for up to -grace), and closes. ADDR is a name for a private Unix
socket of the current user (the default, "procxy": directory 0700, socket
0600), a socket path, "@name" (a Linux abstract socket), tcp://host:port or
tls://host:port (with -tls-cert and -tls-key; with -tls-ca too, clients
must present a certificate signed by it: mutual TLS). When it is ready it
prints the address clients give as -server:

	listening on /run/user/1000/procxy/procxy.sock

With -nats URL it runs an embedded nats-server instead, on URL's host and
port (nats://127.0.0.1:4222; port 0 picks a free one), and prints the URL
clients give as -nats. Users, permissions, -max-payload and TLS become
nats-server settings; nats-server has no rate limits.

By default anyone who can reach the server may connect and do anything.
-token requires a token; -users FILE lists users (matched by token, by
Unix uid on a socket, or by TLS certificate subject), what each may
publish and subscribe to (NATS's permission rules), and rate limits:

	{
	  "users": [
	    {"name": "admin", "token": "s3cret"},
	    {"name": "me", "uid": 1000,
	     "permissions": {"publish": {"allow": ["orders.>"]},
	                     "subscribe": {"deny": ["secrets.>"]},
	                     "allow_responses": true},
	     "rate_limit": {"msgs_per_second": 1000, "bytes_per_second": 1e6}}
	  ],
	  "default_permissions": {"publish": {"deny": [">"]}},
	  "default_rate_limit": {"msgs_per_second": 100}
	}

The server's log goes to stderr: warnings, and with -v the clients as
they come and go, who the server took each for, and connections refused.

	procxy ipc serve
	procxy ipc serve -server tcp://127.0.0.1:4500 -token s3cret
	procxy ipc serve -nats nats://127.0.0.1:4222
`,
		setup: func(fs *flag.FlagSet) runFunc {
			s := &serveFlags{fs: fs}
			s.register(fs)
			return s.run
		},
	}
}

// serveFlags run procxy ipc serve.
type serveFlags struct {
	fs         *flag.FlagSet
	server     string
	nats       string
	token      string
	users      string
	tlsCA      string
	tlsCert    string
	tlsKey     string
	maxPayload sizeFlag
	grace      time.Duration
	verbose    bool
}

func (s *serveFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&s.server, "server", defaultServer(), "listen on `ADDR` ($PROCXY_IPC_SERVER sets the default)")
	fs.StringVar(&s.nats, "nats", "", "run an embedded nats-server on `URL`'s host and port instead (nats://127.0.0.1:0: a free port)")
	fs.StringVar(&s.token, "token", "", "require this `secret` token of every client (or $PROCXY_IPC_TOKEN, which ps does not show)")
	fs.StringVar(&s.users, "users", "", "the users, their permissions and rate limits, from a JSON `file` (see above)")
	fs.StringVar(&s.tlsCert, "tls-cert", "", "the server's certificate `file` (PEM), for tls:// addresses (with -tls-key)")
	fs.StringVar(&s.tlsKey, "tls-key", "", "the server certificate's private key `file` (PEM)")
	fs.StringVar(&s.tlsCA, "tls-ca", "", "require client certificates signed by the CA certificates in `file` (PEM): mutual TLS")
	fs.Var(&s.maxPayload, "max-payload", "the largest message, headers and data, in `bytes` (K, M suffixes: KiB, MiB; default 8M)")
	fs.DurationVar(&s.grace, "grace", 10*time.Second, "after Ctrl-C, wait up to `duration` for requests in flight")
	fs.BoolVar(&s.verbose, "v", false, "verbose: log clients as they come and go, and connections refused")
}

func (s *serveFlags) run(ctx context.Context, inv *invocation) error {
	switch {
	case len(inv.args) > 0:
		return usageErrorf("ipc serve: unexpected argument %q (the address is -server ADDR)", inv.args[0])
	case isSet(s.fs, "nats") && isSet(s.fs, "server"):
		return usageErrorf("ipc serve: -server and -nats: give one")
	case s.grace < 0:
		return usageErrorf("ipc serve: -grace must not be negative")
	}
	o, err := s.options()
	if err != nil {
		return err
	}
	out := &lineWriter{stdout: inv.stdout, stderr: inv.stderr}
	if isSet(s.fs, "nats") {
		return s.serveNATS(ctx, inv, o, out)
	}
	opts := []ipc.ServerOption{ipc.Users(o.Users...)}
	if o.TLS != nil {
		opts = append(opts, ipc.TLS(o.TLS))
	}
	if o.MaxPayload > 0 {
		opts = append(opts, ipc.MaxPayload(o.MaxPayload))
	}
	if o.DefaultPermissions != nil {
		opts = append(opts, ipc.DefaultPermissions(*o.DefaultPermissions))
	}
	if o.DefaultRateLimit != nil {
		opts = append(opts, ipc.DefaultRateLimit(*o.DefaultRateLimit))
	}
	opts = append(opts, ipc.Logger(s.logger(inv, slog.LevelWarn)))
	srv, err := ipc.Listen(ctx, s.server, opts...)
	if err != nil {
		return fmt.Errorf("ipc serve: %w", err)
	}
	if err := out.stdoutLine([]byte("listening on " + srv.Addr())); err != nil {
		srv.Close()
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), s.grace)
	defer cancel()
	n := srv.Stats().RequestsInFlight
	if err := srv.Shutdown(sctx); err != nil && errors.Is(err, context.DeadlineExceeded) {
		out.stderrf("procxy: requests still in flight after -grace %v were cut short (%d at the signal)\n", s.grace, n)
	}
	return nil // a server's usual end
}

func (s *serveFlags) serveNATS(ctx context.Context, inv *invocation, o ipc.ServerOptions, out *lineWriter) error {
	host, port, err := natsListen(s.nats)
	if err != nil {
		return err
	}
	// nats-server warns at every start that ipc's 8 MiB payloads are
	// large: only its errors show without -v.
	o.Logger = s.logger(inv, slog.LevelError)
	srv, err := natsipc.StartServer(ctx, natsipc.ServerOptions{Host: host, Port: port, IPC: o})
	if err != nil {
		return fmt.Errorf("ipc serve: %w", err)
	}
	defer srv.Close()
	if err := out.stdoutLine([]byte("listening on " + srv.URL())); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

// logger is the server's log on stderr, without times: from level up,
// and with -v clients coming and going, who they are, refused connections.
func (s *serveFlags) logger(inv *invocation, level slog.Level) *slog.Logger {
	if s.verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(inv.stderr, &slog.HandlerOptions{Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
}

// natsListen reads the host and port of serve -nats: a URL or host:port;
// a missing port is 0 (a free one), a missing host 127.0.0.1.
func natsListen(s string) (host string, port int, err error) {
	hp := s
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.Scheme != "nats" || u.Path != "" && u.Path != "/" {
			return "", 0, usageErrorf("ipc serve: -nats %q: want nats://host:port", s)
		}
		hp = u.Host
	}
	if hp == "" {
		return "127.0.0.1", 0, nil
	}
	h, p, err := net.SplitHostPort(hp)
	if err != nil {
		h, p = hp, "0"
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, usageErrorf("ipc serve: -nats %q: bad port %q", s, p)
	}
	if h == "" {
		h = "127.0.0.1"
	}
	return h, n, nil
}

// options builds the server's options from the flags and the users file.
func (s *serveFlags) options() (ipc.ServerOptions, error) {
	var o ipc.ServerOptions
	if s.users != "" {
		uf, err := readUsers(s.users)
		if err != nil {
			return o, err
		}
		for _, u := range uf.Users {
			o.Users = append(o.Users, u.user())
		}
		if uf.DefaultPermissions != nil {
			p := uf.DefaultPermissions.permissions()
			o.DefaultPermissions = &p
		}
		if uf.DefaultRateLimit != nil {
			r := ipc.RateLimit(*uf.DefaultRateLimit)
			o.DefaultRateLimit = &r
		}
	}
	if token := cmp.Or(s.token, os.Getenv("PROCXY_IPC_TOKEN")); token != "" {
		o.Users = append(o.Users, ipc.User{Name: "token", Token: token})
	}
	o.MaxPayload = int(s.maxPayload)
	if s.tlsCert != "" || s.tlsKey != "" || s.tlsCA != "" {
		cert, err := keyPair("ipc serve", s.tlsCert, s.tlsKey)
		if err != nil {
			return o, err
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		if s.tlsCA != "" {
			pool, err := certPool("ipc serve", s.tlsCA)
			if err != nil {
				return o, err
			}
			cfg.ClientCAs, cfg.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
		o.TLS = cfg
	}
	return o, nil
}

// usersFile is serve -users: ipc's users and permissions in JSON.
type usersFile struct {
	Users              []userConfig `json:"users"`
	DefaultPermissions *permConfig  `json:"default_permissions"`
	DefaultRateLimit   *rateConfig  `json:"default_rate_limit"`
}

type userConfig struct {
	Name        string      `json:"name"`
	Token       string      `json:"token"`
	UID         *int        `json:"uid"`
	CertSubject string      `json:"cert_subject"`
	Permissions *permConfig `json:"permissions"`
	RateLimit   *rateConfig `json:"rate_limit"`
}

type permConfig struct {
	Publish        subjectPerm `json:"publish"`
	Subscribe      subjectPerm `json:"subscribe"`
	AllowResponses bool        `json:"allow_responses"`
}

type subjectPerm struct {
	Allow []string `json:"allow"`
	Deny  []string `json:"deny"`
}

type rateConfig struct {
	MsgsPerSecond  float64 `json:"msgs_per_second"`
	BytesPerSecond float64 `json:"bytes_per_second"`
	Burst          int     `json:"burst"`
}

func readUsers(file string) (*usersFile, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usageErrorf("ipc serve: -users: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var uf usersFile
	if err := dec.Decode(&uf); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			line := 1 + bytes.Count(b[:se.Offset], []byte("\n"))
			return nil, usageErrorf("ipc serve: -users %s: line %d: %v", file, line, err)
		}
		return nil, usageErrorf("ipc serve: -users %s: %v", file, strings.TrimPrefix(err.Error(), "json: "))
	}
	for i, u := range uf.Users {
		if u.Token == "" && u.UID == nil && u.CertSubject == "" {
			return nil, usageErrorf("ipc serve: -users %s: user %d (%q) has no token, uid or cert_subject to be known by", file, i+1, u.Name)
		}
	}
	return &uf, nil
}

func (u userConfig) user() ipc.User {
	iu := ipc.User{Name: u.Name, Token: u.Token, UID: u.UID, CertSubject: u.CertSubject}
	if u.Permissions != nil {
		p := u.Permissions.permissions()
		iu.Permissions = &p
	}
	if u.RateLimit != nil {
		r := ipc.RateLimit(*u.RateLimit)
		iu.RateLimit = &r
	}
	return iu
}

func (p *permConfig) permissions() ipc.Permissions {
	return ipc.Permissions{
		Publish:        ipc.SubjectPermission(p.Publish),
		Subscribe:      ipc.SubjectPermission(p.Subscribe),
		AllowResponses: p.AllowResponses,
	}
}

// sizeFlag is a byte count with an optional K or M suffix (KiB, MiB).
type sizeFlag int

func (s *sizeFlag) String() string {
	if s == nil || *s == 0 {
		return ""
	}
	return strconv.Itoa(int(*s))
}

func (s *sizeFlag) Set(v string) error {
	mult := 1
	t := strings.TrimSuffix(strings.TrimSuffix(strings.ToUpper(v), "B"), "I")
	switch {
	case strings.HasSuffix(t, "K"):
		mult, t = 1<<10, strings.TrimSuffix(t, "K")
	case strings.HasSuffix(t, "M"):
		mult, t = 1<<20, strings.TrimSuffix(t, "M")
	}
	n, err := strconv.Atoi(t)
	if err != nil || n <= 0 || n > (1<<31-1)/mult {
		return fmt.Errorf("want a positive size such as 1048576, 512K or 8M")
	}
	*s = sizeFlag(n * mult)
	return nil
}
