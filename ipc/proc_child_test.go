//go:build linux

package ipc_test

// The child side of the process harness (see proc_test.go): what the test
// binary does when it runs as a server or client process.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/transport"
)

const childEnv = "PROCXY_IPC_TEST_CHILD" // the child's childConfig, as JSON

// childConfig says what a child process is.
type childConfig struct {
	Role      string        `json:"role"` // "server" or "client"
	Addr      string        `json:"addr"`
	Name      string        `json:"name,omitempty"`
	Token     string        `json:"token,omitempty"`
	CA        string        `json:"ca,omitempty"`   // PEM file: the CA a client trusts, or a server verifies client certificates with
	Cert      string        `json:"cert,omitempty"` // PEM files of this process's certificate and key
	Key       string        `json:"key,omitempty"`
	Heartbeat time.Duration `json:"heartbeat,omitempty"`
	Reconnect time.Duration `json:"reconnect,omitempty"` // client: first reconnect wait (the largest is 4×)

	// Server only.
	ClientAuth  bool          `json:"client_auth,omitempty"` // require client certificates
	MaxPending  int           `json:"max_pending,omitempty"`
	AuthTimeout time.Duration `json:"auth_timeout,omitempty"`
	Users       []ipc.User    `json:"users,omitempty"`
	Listen      []string      `json:"listen,omitempty"` // subjects the server's own endpoint subscribes to before accepting (reported as "endpoint" events)
	Log         bool          `json:"log,omitempty"`    // log to stderr at debug level
}

// command is one instruction to a child.
type command struct {
	ID      int           `json:"id"`
	Op      string        `json:"op"`
	Subject string        `json:"subject,omitempty"`
	Queue   string        `json:"queue,omitempty"`
	Data    string        `json:"data,omitempty"`
	Tag     string        `json:"tag,omitempty"` // the kind of the events a subscription reports
	Mode    string        `json:"mode,omitempty"`
	N       int           `json:"n,omitempty"`
	Size    int           `json:"size,omitempty"`
	Timeout time.Duration `json:"timeout,omitempty"`
}

// event is a child's report: the answer to a command (ID set) or
// something that happened (ID 0).
type event struct {
	ID      int              `json:"id,omitempty"`
	Kind    string           `json:"kind"`
	Subject string           `json:"subject,omitempty"`
	Data    string           `json:"data,omitempty"`
	Header  ipc.Header       `json:"header,omitempty"`
	Err     string           `json:"err,omitempty"`
	Is      []string         `json:"is,omitempty"` // the ipc sentinels Err matches
	N       int64            `json:"n,omitempty"`
	Addr    string           `json:"addr,omitempty"`
	PID     int              `json:"pid,omitempty"`
	Stats   *ipc.ServerStats `json:"stats,omitempty"`
	Clients []ipc.ClientInfo `json:"clients,omitempty"`
	Heap    uint64           `json:"heap,omitempty"` // bytes of Go heap in use
	At      time.Time        `json:"at"`
}

func (e event) is(name string) bool {
	for _, n := range e.Is {
		if n == name {
			return true
		}
	}
	return false
}

// sentinels lists the ipc sentinels err matches, by name.
var sentinels = map[string]error{
	"ErrClosed": ipc.ErrClosed, "ErrNoResponders": ipc.ErrNoResponders, "ErrResponderGone": ipc.ErrResponderGone,
	"ErrConnectionLost": ipc.ErrConnectionLost, "ErrPermission": ipc.ErrPermission, "ErrAuth": ipc.ErrAuth,
	"ErrRateLimited": ipc.ErrRateLimited, "ErrSlowConsumer": ipc.ErrSlowConsumer, "ErrBufferFull": ipc.ErrBufferFull,
	"ErrProtocol": ipc.ErrProtocol, "ErrChannelClosed": ipc.ErrChannelClosed, "ErrServerShutdown": ipc.ErrServerShutdown,
	"ErrMaxPayload": ipc.ErrMaxPayload, "ErrBadSubject": ipc.ErrBadSubject, "ErrCircuitOpen": ipc.ErrCircuitOpen,
	"Canceled": context.Canceled, "DeadlineExceeded": context.DeadlineExceeded,
}

func errEvent(e event, err error) event {
	if err == nil {
		return e
	}
	e.Err = err.Error()
	for name, s := range sentinels {
		if errors.Is(err, s) {
			e.Is = append(e.Is, name)
		}
	}
	return e
}

// childMain runs the test binary as a child process when childEnv is set;
// it does not return then.
func childMain() bool {
	spec := os.Getenv(childEnv)
	if spec == "" {
		return false
	}
	var cfg childConfig
	if err := json.Unmarshal([]byte(spec), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, "child: config:", err)
		os.Exit(2)
	}
	ch := &child{cfg: cfg, out: json.NewEncoder(os.Stdout), release: make(chan struct{})}
	var err error
	switch cfg.Role {
	case "server":
		err = ch.runServer()
	case "client":
		err = ch.runClient()
	default:
		err = fmt.Errorf("unknown role %q", cfg.Role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "child %s: %v\n", cfg.Role, err)
		os.Exit(2)
	}
	os.Exit(0)
	return true
}

// child is the state of a child process.
type child struct {
	cfg   childConfig
	outMu sync.Mutex
	out   *json.Encoder

	srv  *ipc.Server
	conn atomic.Pointer[ipc.Conn]

	wg          sync.WaitGroup
	relMu       sync.Mutex
	release     chan struct{} // closed by "release": held requests are answered
	chMu        sync.Mutex
	openChannel *ipc.Channel[string]
}

func (ch *child) emit(e event) {
	e.At = time.Now()
	ch.outMu.Lock()
	defer ch.outMu.Unlock()
	_ = ch.out.Encode(e)
}

func (ch *child) tlsConfig(server bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if ch.cfg.CA != "" {
		pem, err := os.ReadFile(ch.cfg.CA)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		if server {
			cfg.ClientCAs = pool
		} else {
			cfg.RootCAs = pool
		}
	}
	if ch.cfg.Cert != "" {
		c, err := tls.LoadX509KeyPair(ch.cfg.Cert, ch.cfg.Key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	if server && ch.cfg.ClientAuth {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

func (ch *child) runServer() error {
	c := ch.cfg
	var opts []ipc.ServerOption
	if c.Cert != "" {
		tc, err := ch.tlsConfig(true)
		if err != nil {
			return err
		}
		opts = append(opts, ipc.TLS(tc))
	}
	if c.Heartbeat != 0 {
		opts = append(opts, ipc.Heartbeat(c.Heartbeat))
	}
	if c.MaxPending != 0 {
		opts = append(opts, ipc.MaxPending(c.MaxPending))
	}
	if c.AuthTimeout != 0 {
		opts = append(opts, ipc.AuthTimeout(c.AuthTimeout))
	}
	if len(c.Users) > 0 {
		opts = append(opts, ipc.Users(c.Users...))
	}
	opts = append(opts, ipc.OnDisconnect(func(ci ipc.ClientInfo, err error) {
		ch.emit(errEvent(event{Kind: "client-gone", Subject: ci.Name, PID: ci.Identity.PID}, err))
	}))
	if c.Log {
		opts = append(opts, ipc.Logger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	ctx := context.Background()
	if len(c.Listen) > 0 {
		// Subscribe before accepting anyone, so that nothing published by
		// a client can arrive first.
		s, err := ipc.NewServer(opts...)
		if err != nil {
			return err
		}
		for _, subj := range c.Listen {
			if _, err := s.Conn().Subscribe(subj, func(m *ipc.Msg) {
				ch.emit(event{Kind: "endpoint", Subject: m.Subject, Data: string(m.Data)})
			}); err != nil {
				return err
			}
		}
		ln, err := transport.ListenUnix(ctx, c.Addr)
		if err != nil {
			return err
		}
		ch.wg.Go(func() { _ = s.Serve(ctx, ln) })
		ch.srv = s
	} else {
		s, err := ipc.Listen(ctx, c.Addr, opts...)
		if err != nil {
			return err
		}
		ch.srv = s
	}
	ch.conn.Store(ch.srv.Conn())
	ch.emit(event{Kind: "ready", Addr: ch.srv.Addr(), PID: os.Getpid()})
	ch.serveCommands()
	err := ch.srv.Close()
	ch.wg.Wait()
	return err
}

func (ch *child) runClient() error {
	c := ch.cfg
	opts := []ipc.Option{
		ipc.Name(c.Name),
		ipc.OnState(func(s ipc.State, err error) {
			ch.emit(errEvent(event{Kind: "state", Data: s.String()}, err))
			if s == ipc.StateReconnected {
				// Report once the server has seen the subscriptions again.
				ch.wg.Go(func() {
					if conn := ch.conn.Load(); conn != nil {
						ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
						defer cancel()
						ch.emit(errEvent(event{Kind: "resubscribed"}, conn.Flush(ctx)))
					}
				})
			}
		}),
		ipc.OnError(func(err error) { ch.emit(errEvent(event{Kind: "error"}, err)) }),
		ipc.OnBroadcast(func(m *ipc.Msg) { ch.emit(event{Kind: "broadcast", Subject: m.Subject, Data: string(m.Data)}) }),
	}
	if c.Token != "" {
		opts = append(opts, ipc.Token(c.Token))
	}
	if c.Heartbeat != 0 {
		opts = append(opts, ipc.Heartbeat(c.Heartbeat))
	}
	if c.Reconnect != 0 {
		opts = append(opts, ipc.Reconnect(c.Reconnect, 4*c.Reconnect, 0.2, 0))
	}
	if strings.HasPrefix(c.Addr, "tls://") {
		tc, err := ch.tlsConfig(false)
		if err != nil {
			return err
		}
		opts = append(opts, ipc.TLS(tc))
	}
	conn, err := ipc.Dial(context.Background(), c.Addr, opts...)
	if err != nil {
		ch.emit(errEvent(event{Kind: "dial-failed"}, err))
		return nil
	}
	ch.conn.Store(conn)
	ch.emit(event{Kind: "ready", PID: os.Getpid(), Addr: conn.Info().Identity})
	ch.serveCommands()
	err = conn.Close()
	ch.wg.Wait()
	return err
}

// serveCommands runs commands from stdin, each on its own goroutine,
// until stdin closes or "quit"; it then waits for them.
func (ch *child) serveCommands() {
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	ctx, cancel := context.WithCancel(context.Background())
	var cmds sync.WaitGroup
	for sc.Scan() {
		var cmd command
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			fmt.Fprintln(os.Stderr, "child: command:", err)
			continue
		}
		if cmd.Op == "quit" {
			break
		}
		cmds.Go(func() { ch.emit(ch.run(ctx, cmd)) })
	}
	// Commands still running (held requests, channel loops) end with the
	// connection; the caller closes it and waits for ch.wg.
	cancel()
	ch.releaseAll()
	ch.wg.Go(cmds.Wait)
}

func (ch *child) releaseAll() {
	ch.relMu.Lock()
	defer ch.relMu.Unlock()
	select {
	case <-ch.release:
	default:
		close(ch.release)
	}
}

func (ch *child) released() <-chan struct{} {
	ch.relMu.Lock()
	defer ch.relMu.Unlock()
	return ch.release
}

// run runs one command and returns its answer.
func (ch *child) run(ctx context.Context, cmd command) event {
	e := event{ID: cmd.ID, Kind: "ok"}
	c := ch.conn.Load()
	timeout := cmd.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tag := cmd.Tag
	if tag == "" {
		tag = "msg"
	}
	switch cmd.Op {
	case "sub":
		_, err := c.QueueSubscribe(cmd.Subject, cmd.Queue, func(m *ipc.Msg) {
			e := event{Kind: tag, Subject: m.Subject, Header: m.Header, N: int64(len(m.Data))}
			if len(m.Data) <= 1024 {
				e.Data = string(m.Data)
			}
			ch.emit(e)
		})
		if err == nil {
			err = c.Flush(ctx)
		}
		return errEvent(e, err)
	case "pub":
		n := max(cmd.N, 1)
		data := []byte(cmd.Data)
		if cmd.Size > 0 {
			data = make([]byte, cmd.Size)
		}
		for i := range n {
			if cmd.N > 0 && cmd.Size == 0 {
				data = []byte(cmd.Data + strconv.Itoa(i))
			}
			if err := c.Publish(cmd.Subject, data); err != nil {
				return errEvent(e, fmt.Errorf("message %d: %w", i, err))
			}
		}
		e.N = int64(n)
		return errEvent(e, c.Flush(ctx))
	case "req":
		m, err := c.Request(ctx, cmd.Subject, []byte(cmd.Data))
		if err == nil {
			e.Data, e.Header = string(m.Data), m.Header
		}
		return errEvent(e, err)
	case "reqloop": // requests until the timeout; the first failure ends it
		end := time.Now().Add(cmd.Timeout)
		for time.Now().Before(end) {
			if _, err := c.Request(context.Background(), cmd.Subject, []byte(cmd.Data)); err != nil {
				return errEvent(e, fmt.Errorf("request %d: %w", e.N, err))
			}
			e.N++
		}
		return e
	case "handle":
		return errEvent(e, ch.handle(ctx, c, cmd, tag))
	case "release":
		ch.releaseAll()
		return e
	case "listen":
		l, err := ipc.ListenChannel[string](c, cmd.Subject)
		if err == nil {
			err = c.Flush(ctx)
		}
		if err != nil {
			return errEvent(e, err)
		}
		ch.wg.Go(func() { ch.echoChannel(l) })
		return e
	case "open":
		och, err := ipc.OpenChannel[string](ctx, c, cmd.Subject)
		if err == nil {
			ch.chMu.Lock()
			ch.openChannel = och
			ch.chMu.Unlock()
		}
		return errEvent(e, err)
	case "send", "recv", "close-chan":
		ch.chMu.Lock()
		och := ch.openChannel
		ch.chMu.Unlock()
		switch cmd.Op {
		case "send":
			return errEvent(e, och.Send(ctx, cmd.Data))
		case "recv":
			v, err := och.Recv(ctx)
			e.Data = v
			return errEvent(e, err)
		}
		return errEvent(e, och.Close())
	case "broadcast":
		return errEvent(e, ch.srv.Broadcast(cmd.Subject, []byte(cmd.Data)))
	case "stats":
		st := ch.srv.Stats()
		e.Stats, e.Clients = &st, ch.srv.Clients()
		return e
	case "mem":
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		e.Heap = ms.HeapInuse
		return e
	case "shutdown":
		return errEvent(e, ch.srv.Shutdown(ctx))
	}
	return errEvent(e, fmt.Errorf("unknown op %q", cmd.Op))
}

// handle serves requests to cmd.Subject. Modes:
//
//	echo  answer with the request's data, and its traceparent header in the
//	      answer's Got-Traceparent header
//	hang  report the request ("got"), never answer, report when its context
//	      ends ("cancelled", with ipc.Cause)
//	hold  report the request, answer "done" once released, or report its
//	      context's end
func (ch *child) handle(ctx context.Context, c *ipc.Conn, cmd command, tag string) error {
	_, err := c.QueueSubscribe(cmd.Subject, cmd.Queue, func(m *ipc.Msg) {
		switch cmd.Mode {
		case "echo":
			h := ipc.Header{}
			if tp := m.Header.Get("traceparent"); tp != "" {
				h.Set("Got-Traceparent", tp)
			}
			_ = m.RespondMsg(&ipc.Msg{Data: m.Data, Header: h})
		case "hang", "hold":
			rctx := m.Context()
			ch.emit(event{Kind: tag + "-got", Subject: m.Subject, Data: string(m.Data)})
			rel := ch.released()
			ch.wg.Go(func() {
				if cmd.Mode == "hold" {
					select {
					case <-rel:
						ch.emit(errEvent(event{Kind: tag + "-answered", Data: string(m.Data)}, m.Respond([]byte("done"))))
						return
					case <-rctx.Done():
					}
				} else {
					<-rctx.Done()
				}
				ev := errEvent(event{Kind: tag + "-cancelled", Data: string(m.Data)}, rctx.Err())
				if cause := ipc.Cause(rctx); cause != nil {
					ev.Subject = cause.Error() // why, in words
					ev = errEvent(ev, errors.Join(rctx.Err(), cause))
				}
				ch.emit(ev)
			})
		}
	})
	if err != nil {
		return err
	}
	return c.Flush(ctx)
}

// echoChannel accepts one channel and answers each value v with "echo:v",
// reporting the channel's end.
func (ch *child) echoChannel(l *ipc.ChannelListener[string]) {
	// Accept and Recv fail once the connection closes.
	ctx := context.Background()
	a, err := l.Accept(ctx)
	if err != nil {
		ch.emit(errEvent(event{Kind: "chan-closed"}, err))
		return
	}
	_ = l.Close() // one channel per listen command
	ch.emit(event{Kind: "chan-accepted", Subject: a.Name()})
	for {
		v, err := a.Recv(ctx)
		if err != nil {
			ch.emit(errEvent(event{Kind: "chan-closed"}, err))
			return
		}
		if err := a.Send(ctx, "echo:"+v); err != nil {
			ch.emit(errEvent(event{Kind: "chan-closed"}, err))
			return
		}
	}
}
