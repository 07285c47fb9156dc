package natsipc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/procxy/procxy/internal/backoff"
	"github.com/procxy/procxy/ipc"
)

// Connect connects to the NATS server (or servers: a comma-separated
// list, as nats.Connect takes) at url and returns the connection. It is
// configured from the ipc options as the package documentation says, and
// reconnects by itself (nats.go's reconnect, with ipc's backoff). It fails
// if no server can be reached within ctx and ConnectTimeout, unless
// [ipc.RetryOnConnect] is given.
//
// Given an empty url, Connect starts an embedded nats-server on a random
// loopback port ([StartServer] with default options), owned by the
// connection: closing the connection shuts it down. c.Info().Server is
// its URL, for other processes to connect to.
func Connect(ctx context.Context, url string, opts ...ipc.Option) (*ipc.Conn, error) {
	o := ipc.NewOptions(opts...)
	var srv *Server
	if url == "" {
		var err error
		srv, err = StartServer(ctx, ServerOptions{IPC: ipc.ServerOptions{Logger: o.Logger}})
		if err != nil {
			return nil, err
		}
		url = srv.URL()
	}
	t := newTransport(url, o)
	t.owned, t.srv = true, srv
	c, err := ipc.NewConn(ctx, t, opts...)
	if err != nil && srv != nil {
		srv.Close()
	}
	return c, err
}

// New returns an ipc connection over nc, a connection the caller made
// with whatever nats.go options it needs (credentials, nkeys, server
// lists, its own reconnect settings). The ipc options that configure
// nats.go (ConnectTimeout, RetryOnConnect, the reconnect settings,
// Heartbeat, Name, Token, TLS, NoEcho) do not apply: nc has its own; the
// others do. New chains its handlers before nc's disconnect,
// reconnect, closed and error handlers. Closing the returned connection
// removes its subscriptions but leaves nc open: it stays the caller's.
func New(ctx context.Context, nc *nats.Conn, opts ...ipc.Option) (*ipc.Conn, error) {
	if nc == nil {
		return nil, errors.New("natsipc: New with a nil *nats.Conn")
	}
	t := newTransport("", ipc.NewOptions(opts...))
	t.nc = nc
	return ipc.NewConn(ctx, t, opts...)
}

// NATS returns the NATS connection beneath c, or nil if c is not a
// connection of this package. Use it for what ipc does not cover, such as
// JetStream.
func NATS(c *ipc.Conn) *nats.Conn {
	if t, ok := c.Transport().(*transport); ok {
		return t.nc
	}
	return nil
}

// BroadcastPrefix starts the subjects of broadcasts: what ipc's
// OnBroadcast handlers receive.
const BroadcastPrefix = "$IPC.BCAST."

// Broadcast sends data to the OnBroadcast handler ([ipc.OnBroadcast]) of
// every ipc connection on the NATS server or cluster, as an ipc server's
// Broadcast does for its clients; the handler sees subject. NATS has no
// server endpoint, so any connection may broadcast (restrict it with
// permissions on BroadcastPrefix + ">").
func Broadcast(c *ipc.Conn, subject string, data []byte) error {
	nc := NATS(c)
	if nc == nil {
		return errors.New("natsipc: Broadcast needs a connection made by natsipc")
	}
	if !ipc.ValidLiteral(subject) {
		return fmt.Errorf("%w: %q", ipc.ErrBadSubject, subject)
	}
	if max := c.MaxPayload(); len(data) > max {
		return fmt.Errorf("%w: %s: %d bytes, the limit is %d", ipc.ErrMaxPayload, subject, len(data), max)
	}
	return mapErr(nc.Publish(BroadcastPrefix+subject, data))
}

// connect dials with the reconnect backoff until it succeeds, ctx ends,
// or (without RetryOnConnect) the first attempt fails.
func (t *transport) connect(ctx context.Context) (*nats.Conn, error) {
	defer t.dial.use(context.Background()) // later dials: reconnects, until Close
	t.dial.use(ctx)
	opts := t.natsOptions()
	where := redact(t.url)
	for attempt := 1; ; attempt++ {
		nc, err := nats.Connect(t.url, opts...)
		if err == nil {
			return nc, nil
		}
		err = t.connectErr(err)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("natsipc: connect %s: %w (last attempt: %w)", where, ctx.Err(), err)
		}
		if !t.o.RetryOnConnect || errors.Is(err, ipc.ErrAuth) {
			return nil, fmt.Errorf("natsipc: connect %s: %w", where, err)
		}
		if backoff.Sleep(ctx, reconnectDelay(t.o, attempt)) != nil {
			return nil, fmt.Errorf("natsipc: connect %s: %w (last attempt: %w)", where, ctx.Err(), err)
		}
	}
}

// natsOptions translates the ipc options.
func (t *transport) natsOptions() []nats.Option {
	o := t.o
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.Timeout(connectTimeout(o.ConnectTimeout)),
		nats.SetCustomDialer(&t.dial),
		nats.NoCallbacksAfterClientClose(),
		nats.ReconnectBufSize(max(o.ReconnectBufSize, -1)),
		nats.CustomReconnectDelay(func(attempts int) time.Duration { return reconnectDelay(o, attempts) }),
		nats.DisconnectErrHandler(t.onDisconnect),
		nats.ReconnectHandler(t.onReconnect),
		nats.ClosedHandler(t.onClosed),
		nats.ErrorHandler(t.onError),
		nats.LameDuckModeHandler(func(nc *nats.Conn) {
			o.Logger.Debug("natsipc: the server is entering lame duck mode", "server", nc.ConnectedUrlRedacted())
		}),
	}
	if o.Heartbeat > 0 {
		// nats.go gives up when more than MaxPingsOutstanding pings are
		// unanswered, at the next tick: with 2, a server silent for three
		// intervals is dead, as ipc.Heartbeat says.
		opts = append(opts, nats.PingInterval(o.Heartbeat), nats.MaxPingsOutstanding(2))
	} else {
		opts = append(opts, nats.PingInterval(0))
	}
	if o.Token != "" {
		opts = append(opts, nats.Token(o.Token))
	}
	if o.TLS != nil {
		opts = append(opts, nats.Secure(o.TLS))
	}
	if o.NoReconnect {
		opts = append(opts, nats.NoReconnect())
	} else if o.MaxReconnects > 0 {
		opts = append(opts, nats.MaxReconnects(o.MaxReconnects))
	} else {
		opts = append(opts, nats.MaxReconnects(-1))
	}
	if o.NoEcho {
		opts = append(opts, nats.NoEcho())
	}
	return opts
}

// adopt hooks into a connection given to New.
func (t *transport) adopt() error {
	nc := t.nc
	if nc.IsClosed() {
		return ipc.ErrClosed
	}
	prevDisc, prevRec, prevClosed, prevErr := nc.DisconnectErrHandler(), nc.ReconnectHandler(), nc.ClosedHandler(), nc.ErrorHandler()
	nc.SetDisconnectErrHandler(func(c *nats.Conn, err error) {
		t.onDisconnect(c, err)
		if prevDisc != nil {
			prevDisc(c, err)
		}
	})
	nc.SetReconnectHandler(func(c *nats.Conn) {
		t.onReconnect(c)
		if prevRec != nil {
			prevRec(c)
		}
	})
	nc.SetClosedHandler(func(c *nats.Conn) {
		t.onClosed(c)
		if prevClosed != nil {
			prevClosed(c)
		}
	})
	nc.SetErrorHandler(func(c *nats.Conn, s *nats.Subscription, err error) {
		t.onError(c, s, err)
		if prevErr != nil {
			prevErr(c, s, err)
		}
	})
	t.noteServer(nc)
	if nc.IsConnected() {
		t.sink.State(ipc.StateConnected, nil)
	} else {
		t.sink.State(ipc.StateDisconnected, nc.LastError())
	}
	return nil
}

// The handlers below run on nats.go's callback goroutine, in order.

func (t *transport) onDisconnect(nc *nats.Conn, err error) {
	t.connected.Store(false)
	t.forgetRequests()
	t.call(func(s ipc.Sink) { s.State(ipc.StateDisconnected, err) })
}

func (t *transport) onReconnect(nc *nats.Conn) {
	t.noteServer(nc)
	t.call(func(s ipc.Sink) { s.State(ipc.StateReconnected, nil) })
}

func (t *transport) onClosed(nc *nats.Conn) {
	t.connected.Store(false)
	err := nc.LastError()
	t.call(func(s ipc.Sink) { s.State(ipc.StateClosed, err) })
}

func (t *transport) onError(nc *nats.Conn, ns *nats.Subscription, err error) {
	switch {
	case errors.Is(err, nats.ErrSlowConsumer) && ns != nil:
		t.mu.Lock()
		for _, s := range t.subs {
			if s.ns == ns {
				t.reportDropsLocked(s)
			}
		}
		t.mu.Unlock()
		return
	case errors.Is(err, nats.ErrPermissionViolation):
		if subj, ok := deniedPublish(err); ok {
			t.refused(subj, err)
		}
	}
	err = mapErr(err)
	t.call(func(s ipc.Sink) { s.AsyncError(err) })
}

// permissionsRe finds the subject in the server's -ERR for a refused
// publish: the protocol says which subject only in this text.
var permissionsRe = regexp.MustCompile(`Permissions Violation for Publish to "([^"]+)"`)

// deniedPublish returns the subject of a publish the server refused.
func deniedPublish(err error) (string, bool) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return "", false
	}
	m := permissionsRe.FindStringSubmatch(err.Error())
	if m == nil {
		return "", false
	}
	return m[1], true
}

// mapErr gives a nats.go error the ipc sentinel with the same meaning,
// keeping the original in the chain.
func mapErr(err error) error {
	var sentinel error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, nats.ErrConnectionClosed):
		sentinel = ipc.ErrClosed
	case errors.Is(err, nats.ErrMaxPayload):
		sentinel = ipc.ErrMaxPayload
	case errors.Is(err, nats.ErrReconnectBufExceeded):
		sentinel = ipc.ErrBufferFull
	case errors.Is(err, nats.ErrBadSubject), errors.Is(err, nats.ErrBadQueueName):
		sentinel = ipc.ErrBadSubject
	case errors.Is(err, nats.ErrBadHeaderMsg):
		sentinel = ipc.ErrBadHeader
	case errors.Is(err, nats.ErrPermissionViolation):
		sentinel = ipc.ErrPermission
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAuthRevoked):
		sentinel = ipc.ErrAuth
	case errors.Is(err, nats.ErrConnectionDraining):
		sentinel = ipc.ErrDraining
	case errors.Is(err, nats.ErrSlowConsumer):
		sentinel = ipc.ErrSlowConsumer
	case errors.Is(err, nats.ErrConnectionReconnecting), errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrStaleConnection):
		sentinel = ipc.ErrConnectionLost
	default:
		return err
	}
	return fmt.Errorf("%w: %w", sentinel, err)
}

// connectErr explains a failed nats.Connect.
func (t *transport) connectErr(err error) error {
	if last := t.dial.last(); last != nil && errors.Is(err, nats.ErrNoServers) {
		// nats.go reports a refused connection as "no servers": say why.
		return fmt.Errorf("%w (%w)", err, last)
	}
	return mapErr(err)
}

// redact hides the credentials in a list of URLs.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			parts[i] = u.Redacted()
		}
	}
	return strings.Join(parts, ",")
}

// connectTimeout is nats.go's Timeout for ipc's ConnectTimeout, where
// negative means none.
func connectTimeout(d time.Duration) time.Duration {
	if d < 0 {
		return noLimit
	}
	return d
}

// dialer dials NATS servers for nats.go, within a context: Open's while
// connecting, then one that ends at Close, so that no dial outlives the
// transport. It remembers the last failure, which nats.go does not report.
type dialer struct {
	timeout time.Duration

	mu      sync.Mutex
	ctx     context.Context // guarded by mu
	cancel  context.CancelFunc
	lastErr error // guarded by mu
}

// use makes later dials run within ctx (and end at stop).
func (d *dialer) use(ctx context.Context) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel != nil {
		d.cancel()
	}
	d.ctx, d.cancel = context.WithCancel(ctx)
}

func (d *dialer) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cancel != nil {
		d.cancel()
	}
}

// Dial implements nats.CustomDialer.
func (d *dialer) Dial(network, address string) (net.Conn, error) {
	d.mu.Lock()
	ctx := d.ctx
	d.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	nd := net.Dialer{Timeout: d.timeout}
	c, err := nd.DialContext(ctx, network, address)
	if err != nil {
		d.mu.Lock()
		d.lastErr = err
		d.mu.Unlock()
	}
	return c, err
}

func (d *dialer) last() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastErr
}

// reconnectDelay is ipc's reconnect backoff before attempt n: ReconnectWait
// doubling up to ReconnectMaxWait, with a random fraction ReconnectJitter of
// each wait.
func reconnectDelay(o ipc.Options, n int) time.Duration {
	return backoff.Exponential{Base: o.ReconnectWait, Max: o.ReconnectMaxWait, Jitter: o.ReconnectJitter}.Delay(n, backoff.Jitter())
}
