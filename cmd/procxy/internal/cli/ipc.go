package cli

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/natsipc"
)

// ipcCommand is procxy ipc, a group of commands that talk to processes
// over package ipc, as the nats command does over NATS.
func ipcCommand() *command {
	return &command{
		name:    "ipc",
		summary: "serve, publish, subscribe, request and reply on an ipc server or NATS",
		usage:   ipcUsage,
		subs: func() []*command {
			return []*command{ipcServeCommand(), ipcPubCommand(), ipcSubCommand(), ipcRequestCommand(),
				ipcStreamCommand(), ipcReplyCommand(), ipcWorkersCommand()}
		},
	}
}

const ipcUsage = `usage: procxy ipc <command> [flags] [arguments]

Ipc talks to processes that use package ipc, as the nats command does for
NATS: on an ipc server (a private Unix socket by default, or a socket path,
tcp://host:port or tls://host:port) or on NATS (-nats URL), where package
natsipc runs the same API. Subjects are NATS's: "."-separated tokens, "*"
matches one token and ">" the rest.

Commands:

	serve    run an ipc server, or an embedded nats-server
	pub      publish a message
	sub      print the messages on a subject as they arrive
	request  send a request and print the reply
	stream   send a request and print its streamed reply as it arrives
	reply    answer requests: an echo, a fixed response or a command's output
	workers  list the procxy workers (procxy.Serve) and what they serve

Every command but serve connects with -server ADDR (default
$PROCXY_IPC_SERVER, or "procxy": the private socket procxy ipc serve
listens on by default) or -nats URL (nats://host:4222; a comma-separated
list for a cluster), and -token, -tls-ca, -tls-cert and -tls-key when the
server asks for them.

	procxy ipc serve &
	procxy ipc reply svc.echo &
	procxy ipc request svc.echo hello        # hello
	procxy ipc sub 'orders.>' &
	procxy ipc pub orders.new '{"id": 1}'

Run "procxy help ipc <command>" for more about a command.

Exit status: 0 success (serve, sub and reply also when stopped by Ctrl-C
or SIGTERM, their usual end); 1 the command failed; 2 a usage error; 3 the
responder answered with an error; 4 the server could not be reached,
refused the connection or went away, or a responder went away before
answering; 5 no reply within -timeout; 6 no responders (for pub -sync, no
subscribers); 130 interrupted.
`

// defaultServer is the ipc server commands connect to without -server.
func defaultServer() string { return cmp.Or(os.Getenv("PROCXY_IPC_SERVER"), "procxy") }

// connFlags say which ipc server (or NATS) to connect to, and how.
type connFlags struct {
	fs             *flag.FlagSet // to tell flags given from defaults
	server         string
	nats           string
	token          string
	name           string
	tlsCA          string
	tlsCert        string
	tlsKey         string
	connectTimeout time.Duration
}

// register defines the connection flags; server is -server's default.
func (f *connFlags) register(fs *flag.FlagSet, server, serverUsage string) {
	f.fs = fs
	fs.StringVar(&f.server, "server", server, serverUsage)
	fs.StringVar(&f.nats, "nats", "", "connect to the NATS server at `URL` instead (nats://host:4222, tls://…; comma-separated for a cluster)")
	fs.StringVar(&f.token, "token", "", "`secret` token for a server that requires one (or $PROCXY_IPC_TOKEN, which ps does not show)")
	fs.StringVar(&f.name, "name", "", "`name` of this connection in the server's client list (default \"procxy ipc COMMAND\")")
	fs.StringVar(&f.tlsCA, "tls-ca", "", "verify a tls:// server's certificate with the CA certificates in `file` (PEM) instead of the system's")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "client certificate `file` (PEM) for a server that requires one (mutual TLS; with -tls-key)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "the client certificate's private key `file` (PEM)")
	fs.DurationVar(&f.connectTimeout, "connect-timeout", ipc.DefaultConnectTimeout, "give up connecting after `duration`")
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// useNATS reports whether the flags name NATS rather than an ipc server.
func (f *connFlags) useNATS(cmd string) (bool, error) {
	switch {
	case isSet(f.fs, "nats") && isSet(f.fs, "server"):
		return false, usageErrorf("%s: -server and -nats: give one", cmd)
	case isSet(f.fs, "nats") && f.nats == "":
		return false, usageErrorf("%s: -nats needs a URL (an embedded nats-server is for procxy ipc serve -nats)", cmd)
	case f.connectTimeout <= 0:
		return false, usageErrorf("%s: -connect-timeout must be positive", cmd)
	}
	return f.nats != "", nil
}

// where names the server for messages.
func (f *connFlags) where() string {
	if f.nats != "" {
		return "the NATS server at " + f.nats
	}
	return "the ipc server " + f.server
}

// dial connects as the flags say. A connection that cannot be made gives
// a *connectError.
func (f *connFlags) dial(ctx context.Context, cmd string, opts ...ipc.Option) (*ipc.Conn, error) {
	onNATS, err := f.useNATS(cmd)
	if err != nil {
		return nil, err
	}
	o := []ipc.Option{ipc.Name(cmp.Or(f.name, "procxy "+cmd)), ipc.ConnectTimeout(f.connectTimeout)}
	if token := cmp.Or(f.token, os.Getenv("PROCXY_IPC_TOKEN")); token != "" {
		o = append(o, ipc.Token(token))
	}
	cfg, err := clientTLS(cmd, f.tlsCA, f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		o = append(o, ipc.TLS(cfg))
	}
	o = append(o, opts...)
	var c *ipc.Conn
	if onNATS {
		c, err = natsipc.Connect(ctx, f.nats, o...)
	} else {
		c, err = ipc.Dial(ctx, f.server, o...)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &connectError{msg: f.connectFailed(err, onNATS), err: err}
	}
	return c, nil
}

// connectFailed says why a connection could not be made, in one line:
// for a dial that failed, the address dialled and the system's reason.
func (f *connFlags) connectFailed(err error, onNATS bool) string {
	if errors.Is(err, ipc.ErrAuth) {
		// The server's answer, without the dial's wrapping.
		for u := errors.Unwrap(err); u != nil && u != ipc.ErrAuth && errors.Is(u, ipc.ErrAuth); u = errors.Unwrap(u) {
			err = u
		}
		return fmt.Sprintf("cannot connect to %s: %s", f.where(), oneLine(err.Error()))
	}
	var oe *net.OpError
	if !errors.As(err, &oe) {
		return fmt.Sprintf("cannot connect to %s: %s", f.where(), oneLine(err.Error()))
	}
	cause := oe.Err
	var se *os.SyscallError
	if errors.As(cause, &se) {
		cause = se.Err
	}
	where := f.where()
	if a := oe.Addr; a != nil && !strings.HasSuffix(where, a.String()) {
		where += " (" + a.String() + ")"
	}
	msg := fmt.Sprintf("cannot connect to %s: %v", where, cause)
	if !onNATS {
		msg += "; is procxy ipc serve running?"
	}
	return msg
}

// connectError is a connection to an ipc server or NATS that could not be
// made.
type connectError struct {
	msg string
	err error
}

func (e *connectError) Error() string { return e.msg }
func (e *connectError) Unwrap() error { return e.err }

// clientTLS is the TLS configuration the flags ask for, or nil.
func clientTLS(cmd, ca, cert, key string) (*tls.Config, error) {
	if ca == "" && cert == "" && key == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca != "" {
		pool, err := certPool(cmd, ca)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if cert != "" || key != "" {
		c, err := keyPair(cmd, cert, key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg, nil
}

func certPool(cmd, file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usageErrorf("%s: -tls-ca: %v", cmd, err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, usageErrorf("%s: -tls-ca %s: no PEM certificate in it", cmd, file)
	}
	return pool, nil
}

func keyPair(cmd, cert, key string) (tls.Certificate, error) {
	if cert == "" || key == "" {
		return tls.Certificate{}, usageErrorf("%s: -tls-cert and -tls-key go together", cmd)
	}
	c, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return tls.Certificate{}, usageErrorf("%s: -tls-cert %s, -tls-key %s: %v", cmd, cert, key, err)
	}
	return c, nil
}

// watchConn returns options that report, on stderr, the state changes and
// the asynchronous errors of a long-lived connection (sub, reply); an
// error that refused reports true for is the caller's, and not printed.
func watchConn(out *lineWriter, f *connFlags, refused func(error) bool) []ipc.Option {
	return []ipc.Option{
		ipc.OnState(func(s ipc.State, err error) {
			switch s {
			case ipc.StateDisconnected:
				why := ""
				if err != nil {
					why = ": " + oneLine(err.Error())
				}
				out.stderrf("procxy: disconnected from %s%s; reconnecting\n", f.where(), why)
			case ipc.StateReconnected:
				out.stderrf("procxy: reconnected to %s\n", f.where())
			}
		}),
		ipc.OnError(func(err error) {
			if errors.Is(err, ipc.ErrPermission) && refused != nil && refused(err) {
				return
			}
			out.stderrf("procxy: %s\n", oneLine(err.Error()))
		}),
	}
}

func oneLine(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", " ") }

// headerFlags collect -H KEY:VALUE flags.
type headerFlags struct{ h ipc.Header }

func (h *headerFlags) String() string { return "" }

func (h *headerFlags) Set(v string) error {
	k, val, ok := strings.Cut(v, ":")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return fmt.Errorf("want KEY:VALUE, got %q", v)
	}
	if h.h == nil {
		h.h = ipc.Header{}
	}
	h.h.Add(k, strings.TrimSpace(val))
	return nil
}

// requestFailed turns the error of an ipc request into one line for a
// person, keeping the cause for ExitCode.
func requestFailed(f *connFlags, subject string, timeout time.Duration, ctx context.Context, err error) error {
	var re *ipc.RemoteError
	switch {
	case errors.As(err, &re):
		return &remoteFailure{method: subject, re: re, where: "the responder"}
	case errors.Is(err, ipc.ErrNoResponders):
		return &callError{msg: fmt.Sprintf("no responders for %s on %s", subject, f.where()), err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &callError{msg: fmt.Sprintf("no reply to %s within -timeout %v; the request was cancelled in the responder", subject, timeout), err: err}
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return &callAborted{msg: fmt.Sprintf("the request to %s was cancelled in the responder", subject)}
	case errors.Is(err, ipc.ErrResponderGone):
		return &callError{msg: fmt.Sprintf("the responder to %s went away before answering", subject), err: err}
	case errors.Is(err, ipc.ErrConnectionLost), errors.Is(err, ipc.ErrClosed):
		return &callError{msg: fmt.Sprintf("lost the connection to %s while waiting for the reply to %s", f.where(), subject), err: err}
	}
	return err
}
