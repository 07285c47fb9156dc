package ipc

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"time"

	"github.com/procxy/procxy/internal/backoff"
)

// Defaults. Each applies when the matching option is not given.
const (
	DefaultMaxPayload        = 8 << 20          // largest message (headers + data)
	DefaultCallTimeout       = 30 * time.Second // a request whose context has no deadline
	DefaultHeartbeat         = 5 * time.Second  // a silent peer is dead after 3 of these
	DefaultConnectTimeout    = 5 * time.Second  // one dial and handshake
	DefaultReconnectWait     = 50 * time.Millisecond
	DefaultReconnectMaxWait  = 5 * time.Second
	DefaultReconnectJitter   = 0.2
	DefaultReconnectBufSize  = 8 << 20 // publishes kept while disconnected
	DefaultSubPendingMsgs    = 65536   // per subscription queue
	DefaultSubPendingBytes   = 64 << 20
	DefaultMaxPending        = 64 << 20 // per client, in the server
	DefaultAuthTimeout       = 2 * time.Second
	DefaultMaxConcurrent     = 4096 // request handlers of one Handle running at once
	DefaultDeadLetterEntries = 1024
)

// Options is a connection's configuration, filled by [Option] values. Each
// zero field means its default. Backends (package natsipc) read it through
// [NewOptions].
type Options struct {
	Name  string      // shown in the server's client list and logs
	Token string      // sent to the server when it requires a token
	TLS   *tls.Config // for tls:// addresses; nil means the system roots
	// Dial, if set, makes the connections instead of the address (which
	// then only names the server in errors): for transports the address
	// forms do not cover, such as in-memory pipes or Windows named pipes.
	Dial func(ctx context.Context) (net.Conn, error)

	ConnectTimeout   time.Duration // one dial and handshake; default DefaultConnectTimeout, negative: only ctx
	RetryOnConnect   bool          // Dial keeps retrying (until its ctx ends) instead of failing at once
	NoReconnect      bool          // a broken connection closes instead of reconnecting
	MaxReconnects    int           // attempts per outage; 0 means unlimited
	ReconnectWait    time.Duration // first backoff; doubles up to ReconnectMaxWait
	ReconnectMaxWait time.Duration
	ReconnectJitter  float64 // fraction of each backoff that is random
	ReconnectBufSize int     // bytes of publishes kept while disconnected; negative: none

	Heartbeat   time.Duration // ping interval; the server is dead after 3 silent intervals; negative: off
	CallTimeout time.Duration // for requests whose context has no deadline; negative: none

	SubPendingMsgs  int // per subscription queue, messages
	SubPendingBytes int // per subscription queue, bytes

	NoEcho bool // do not receive this connection's own publishes

	// OnState is called, in order, on one goroutine, for every state change.
	OnState func(s State, err error)
	// OnError is called with asynchronous errors: publishes the server
	// refused, messages dropped for a slow subscription, handler panics.
	OnError func(err error)
	// OnBroadcast receives the server's broadcasts ([Server.Broadcast]).
	OnBroadcast func(*Msg)

	Logger   *slog.Logger // debug logging; nil means slog.Default()
	Observer Observer     // per-message and per-request hooks; nil: none

	DeadLetters int // dead-letter queue entries kept; 0: DefaultDeadLetterEntries; negative: none

	Retry   RetryPolicy    // retries of idempotent requests
	Breaker BreakerOptions // per-subject circuit breaker; off unless Enabled
}

// Option configures a connection.
type Option interface{ applyConn(*Options) }

// ServerOption configures a server.
type ServerOption interface{ applyServer(*ServerOptions) }

// SharedOption is an option that fits both a connection and a server.
type SharedOption interface {
	Option
	ServerOption
}

type connOpt func(*Options)

func (f connOpt) applyConn(o *Options) { f(o) }

type serverOpt func(*ServerOptions)

func (f serverOpt) applyServer(o *ServerOptions) { f(o) }

type sharedOpt struct {
	c func(*Options)
	s func(*ServerOptions)
}

func (o sharedOpt) applyConn(x *Options)         { o.c(x) }
func (o sharedOpt) applyServer(x *ServerOptions) { o.s(x) }

// NewOptions returns the options opts set, with defaults filled in.
func NewOptions(opts ...Option) Options {
	var o Options
	for _, opt := range opts {
		if opt != nil {
			opt.applyConn(&o)
		}
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	def(&o.ConnectTimeout, DefaultConnectTimeout)
	def(&o.ReconnectWait, DefaultReconnectWait)
	def(&o.ReconnectMaxWait, DefaultReconnectMaxWait)
	def(&o.Heartbeat, DefaultHeartbeat)
	def(&o.CallTimeout, DefaultCallTimeout)
	if o.ReconnectJitter == 0 {
		o.ReconnectJitter = DefaultReconnectJitter
	}
	if o.ReconnectBufSize == 0 {
		o.ReconnectBufSize = DefaultReconnectBufSize
	}
	if o.SubPendingMsgs <= 0 {
		o.SubPendingMsgs = DefaultSubPendingMsgs
	}
	if o.SubPendingBytes <= 0 {
		o.SubPendingBytes = DefaultSubPendingBytes
	}
	if o.DeadLetters == 0 {
		o.DeadLetters = DefaultDeadLetterEntries
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Retry.fill()
	o.Breaker.fill()
	return o
}

// reconnectDelay is the wait before reconnect attempt n (n ≥ 1):
// ReconnectWait doubling up to ReconnectMaxWait, a random fraction
// ReconnectJitter of it.
func (o *Options) reconnectDelay(n int) time.Duration {
	return backoff.Exponential{Base: o.ReconnectWait, Max: o.ReconnectMaxWait, Jitter: o.ReconnectJitter}.Delay(n, backoff.Jitter())
}

// WithDialer makes connections with dial instead of dialing the address.
func WithDialer(dial func(ctx context.Context) (net.Conn, error)) Option {
	return connOpt(func(o *Options) { o.Dial = dial })
}

// Name names the connection in the server's client list and logs.
func Name(name string) Option { return connOpt(func(o *Options) { o.Name = name }) }

// Token is the secret sent to a server that requires one.
func Token(token string) Option { return connOpt(func(o *Options) { o.Token = token }) }

// ConnectTimeout bounds one dial and handshake; negative means no bound
// but the context's (reconnects in the background then have none).
func ConnectTimeout(d time.Duration) Option {
	return connOpt(func(o *Options) { o.ConnectTimeout = d })
}

// RetryOnConnect makes Dial keep trying, with the reconnect backoff, until
// its context ends, instead of failing when the server is not up yet.
func RetryOnConnect() Option { return connOpt(func(o *Options) { o.RetryOnConnect = true }) }

// NoReconnect makes a broken connection close instead of reconnecting.
func NoReconnect() Option { return connOpt(func(o *Options) { o.NoReconnect = true }) }

// Reconnect sets the reconnect backoff: the first wait, the largest wait
// and the random fraction of each; and the attempts per outage (0: no limit).
func Reconnect(wait, maxWait time.Duration, jitter float64, maxAttempts int) Option {
	return connOpt(func(o *Options) {
		o.ReconnectWait, o.ReconnectMaxWait, o.ReconnectJitter, o.MaxReconnects = wait, maxWait, jitter, maxAttempts
	})
}

// ReconnectBuffer sets how many bytes of publishes are kept while
// disconnected (negative: none, publishes fail with ErrBufferFull at once).
func ReconnectBuffer(bytes int) Option {
	return connOpt(func(o *Options) { o.ReconnectBufSize = bytes })
}

// CallTimeout bounds requests whose context has no deadline (negative: none).
func CallTimeout(d time.Duration) Option {
	return connOpt(func(o *Options) { o.CallTimeout = d })
}

// PendingLimits bounds each subscription's queue; past either limit,
// messages are dropped and reported (ErrSlowConsumer).
func PendingLimits(msgs, bytes int) Option {
	return connOpt(func(o *Options) { o.SubPendingMsgs, o.SubPendingBytes = msgs, bytes })
}

// NoEcho stops the connection from receiving its own publishes.
func NoEcho() Option { return connOpt(func(o *Options) { o.NoEcho = true }) }

// OnState sets the connection state callback.
func OnState(fn func(State, error)) Option { return connOpt(func(o *Options) { o.OnState = fn }) }

// OnError sets the asynchronous error callback.
func OnError(fn func(error)) Option { return connOpt(func(o *Options) { o.OnError = fn }) }

// OnBroadcast sets the handler of the server's broadcasts.
func OnBroadcast(fn func(*Msg)) Option { return connOpt(func(o *Options) { o.OnBroadcast = fn }) }

// WithRetry enables retries of requests marked idempotent.
func WithRetry(p RetryPolicy) Option { return connOpt(func(o *Options) { o.Retry = p }) }

// WithBreaker enables a circuit breaker per subject.
func WithBreaker(b BreakerOptions) Option {
	return connOpt(func(o *Options) { b.Enabled = true; o.Breaker = b })
}

// TLS sets the TLS configuration: for a connection, of tls:// addresses
// (with client certificates for mutual TLS); for a server, of its tls://
// listeners (set ClientAuth to require client certificates).
func TLS(cfg *tls.Config) SharedOption {
	return sharedOpt{func(o *Options) { o.TLS = cfg }, func(o *ServerOptions) { o.TLS = cfg }}
}

// Heartbeat sets the ping interval; a peer silent for three intervals is
// dead. Negative turns heartbeats off.
func Heartbeat(d time.Duration) SharedOption {
	return sharedOpt{func(o *Options) { o.Heartbeat = d }, func(o *ServerOptions) { o.Heartbeat = d }}
}

// Logger sets the logger; nil means slog.Default(). A client logs at
// debug level only; a server logs connection and auth events at info.
func Logger(l *slog.Logger) SharedOption {
	return sharedOpt{func(o *Options) { o.Logger = l }, func(o *ServerOptions) { o.Logger = l }}
}

// WithObserver sets the per-message and per-request hooks.
func WithObserver(ob Observer) SharedOption {
	return sharedOpt{func(o *Options) { o.Observer = ob }, func(o *ServerOptions) { o.Observer = ob }}
}

// DeadLetters sets how many dead letters are kept (negative: none).
func DeadLetters(n int) SharedOption {
	return sharedOpt{func(o *Options) { o.DeadLetters = n }, func(o *ServerOptions) { o.DeadLetters = n }}
}
