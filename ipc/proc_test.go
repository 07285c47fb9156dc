//go:build linux

package ipc_test

// The process harness: the test binary re-runs itself as an ipc server or
// client process (childMain), driven by JSON commands on its stdin and
// reporting JSON events on its stdout. A child never outlives its test: it
// dies with the test process (Pdeathsig), exits when its stdin closes, and
// the test's cleanup kills and reaps it.

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
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

// ---- the test side ----

// noOrphans runs the tests, then fails the run if a child process is
// still alive: every test must have ended the processes it started.
type noOrphans struct{ m *testing.M }

func (n noOrphans) Run() int {
	code := n.m.Run()
	if left := liveChildren(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "ipc tests: child processes outlived their tests: %v\n", left)
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		return 1
	}
	return code
}

// liveChildren lists this process's children that have not exited.
func liveChildren() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	me := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parentheses.
		i := strings.LastIndexByte(string(b), ')')
		f := strings.Fields(string(b)[i+1:])
		if len(f) >= 2 && f[1] == strconv.Itoa(me) && f[0] != "Z" {
			pids = append(pids, pid)
		}
	}
	return pids
}

// proc is a running child process.
type proc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	ready  event
	stderr *syncBuffer // nil: the child's stderr is the test's

	inMu sync.Mutex
	seq  atomic.Int64

	mu      sync.Mutex
	replies map[int]chan event
	queues  map[string][]event
	changed chan struct{} // closed and replaced when an event arrives
	killed  bool

	exited chan struct{} // closed once the process has exited and been reaped
	state  *os.ProcessState
}

// syncBuffer is a text buffer safe for concurrent writes and reads, that
// can wait for a text to appear.
type syncBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{} // closed and replaced by each write
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor waits until the buffer contains text and returns the line that
// has it.
func (b *syncBuffer) waitFor(t testing.TB, text string) string {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		b.mu.Lock()
		s := b.b.String()
		if i := strings.Index(s, text); i >= 0 {
			b.mu.Unlock()
			start := strings.LastIndexByte(s[:i], '\n') + 1
			end, _, _ := strings.Cut(s[start:], "\n")
			return end
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		changed := b.changed
		b.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			t.Fatalf("no %q in the output within %v; it has:\n%s", text, waitLimit, s)
		}
	}
}

// waitLimit bounds every wait for a child, so that a hang becomes a
// failure that says what was awaited rather than a test timeout.
const waitLimit = 90 * time.Second

// startProc starts a child with cfg and waits until it is ready. With
// captureStderr, its stderr is kept in p.stderr instead of shown.
func startProc(t testing.TB, name string, cfg childConfig, captureStderr bool) *proc {
	t.Helper()
	spec, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec), "GORACE=atexit_sleep_ms=0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{t: t, name: name, cmd: cmd, replies: make(map[int]chan event), queues: make(map[string][]event),
		changed: make(chan struct{}), exited: make(chan struct{})}
	if captureStderr {
		p.stderr = &syncBuffer{}
		cmd.Stderr = p.stderr
	} else {
		cmd.Stderr = os.Stderr
	}
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.read(stdout) // ends when the child exits; the cleanup waits for it
	t.Cleanup(p.stop)
	p.ready = p.await("ready")
	return p
}

// read dispatches the child's events, then reaps it.
func (p *proc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			continue
		}
		p.mu.Lock()
		if e.ID != 0 {
			if ch := p.replies[e.ID]; ch != nil {
				ch <- e
				delete(p.replies, e.ID)
			}
		} else {
			p.queues[e.Kind] = append(p.queues[e.Kind], e)
			close(p.changed)
			p.changed = make(chan struct{})
		}
		p.mu.Unlock()
	}
	io.Copy(io.Discard, r)
	_ = p.cmd.Wait()
	p.state = p.cmd.ProcessState
	close(p.exited)
}

// stop ends the child: politely (stdin closes, it closes its connection and
// exits), then by force. A child that was not killed must exit cleanly, so
// that a data race in it (exit status 66) fails the test.
func (p *proc) stop() {
	p.stdin.Close()
	t := time.NewTimer(waitLimit)
	defer t.Stop()
	select {
	case <-p.exited:
	case <-t.C:
		p.t.Errorf("%s: did not exit within %v after its stdin closed; killing it", p.name, waitLimit)
		p.kill()
	}
	p.mu.Lock()
	killed := p.killed
	p.mu.Unlock()
	if !killed && !p.state.Success() {
		p.t.Errorf("%s exited with %v", p.name, p.state)
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (p *proc) kill() {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies only once it runs
	<-p.exited
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("%s: signal %v: %v", p.name, sig, err)
	}
}

// start sends cmd and returns a channel that gets the child's answer. It
// may be used off the test goroutine: failures arrive as answers with Err
// set.
func (p *proc) start(cmd command) <-chan event {
	cmd.ID = int(p.seq.Add(1))
	ch := make(chan event, 1)
	p.mu.Lock()
	p.replies[cmd.ID] = ch
	p.mu.Unlock()
	b, _ := json.Marshal(cmd)
	p.inMu.Lock()
	_, err := p.stdin.Write(append(b, '\n'))
	p.inMu.Unlock()
	if err != nil {
		ch <- event{ID: cmd.ID, Err: fmt.Sprintf("%s: send %s: %v", p.name, cmd.Op, err)}
		return ch
	}
	out := make(chan event, 1)
	go func() { // ends with the answer, the child's exit or waitLimit
		t := time.NewTimer(waitLimit)
		defer t.Stop()
		select {
		case e := <-ch:
			out <- e
		case <-p.exited:
			select {
			case e := <-ch:
				out <- e
			default:
				out <- event{ID: cmd.ID, Err: fmt.Sprintf("%s exited (%v) before answering %s", p.name, p.state, cmd.Op)}
			}
		case <-t.C:
			out <- event{ID: cmd.ID, Err: fmt.Sprintf("%s: no answer to %s %s within %v", p.name, cmd.Op, cmd.Subject, waitLimit)}
		}
	}()
	return out
}

// do sends cmd and returns the child's answer.
func (p *proc) do(cmd command) event {
	p.t.Helper()
	return <-p.start(cmd)
}

// must is do for a command that must succeed.
func (p *proc) must(cmd command) event {
	p.t.Helper()
	e := p.do(cmd)
	if e.Err != "" {
		p.t.Fatalf("%s: %s %s: %s", p.name, cmd.Op, cmd.Subject, e.Err)
	}
	return e
}

// await returns the next event of kind, waiting for it.
func (p *proc) await(kind string) event {
	p.t.Helper()
	t := time.NewTimer(waitLimit)
	defer t.Stop()
	for {
		p.mu.Lock()
		if q := p.queues[kind]; len(q) > 0 {
			e := q[0]
			p.queues[kind] = q[1:]
			p.mu.Unlock()
			return e
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.exited:
			// Events read before the exit are queued already.
			p.mu.Lock()
			n := len(p.queues[kind])
			p.mu.Unlock()
			if n == 0 {
				p.t.Fatalf("%s exited (%v) while the test waited for %q", p.name, p.state, kind)
			}
		case <-t.C:
			p.t.Fatalf("%s: no %q event within %v", p.name, kind, waitLimit)
		}
	}
}

// awaitState returns the next state event with state s.
func (p *proc) awaitState(s ipc.State) event {
	p.t.Helper()
	for {
		if e := p.await("state"); e.Data == s.String() {
			return e
		}
	}
}

// pending returns the events of kind received and not yet taken.
func (p *proc) pending(kind string) []event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]event(nil), p.queues[kind]...)
}

// rss returns the process's resident set size and its peak, in bytes.
func (p *proc) rss() (now, peak int64) {
	p.t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		p.t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		for key, v := range map[string]*int64{"VmRSS:": &now, "VmHWM:": &peak} {
			if rest, ok := strings.CutPrefix(line, key); ok {
				kb, _ := strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
				*v = kb << 10
			}
		}
	}
	return now, peak
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// awaitTotal waits until the procs together have received n events of
// kind, and returns them by proc (leaving them queued).
func awaitTotal(t testing.TB, kind string, n int, procs ...*proc) [][]event {
	t.Helper()
	timer := time.NewTimer(waitLimit)
	defer timer.Stop()
	for {
		got := make([][]event, len(procs))
		total := 0
		cases := []reflect.SelectCase{{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(timer.C)}}
		for i, p := range procs {
			p.mu.Lock()
			got[i] = append([]event(nil), p.queues[kind]...)
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(p.changed)},
				reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(p.exited)})
			p.mu.Unlock()
			total += len(got[i])
		}
		if total >= n {
			return got
		}
		if i, _, _ := reflect.Select(cases); i == 0 {
			t.Fatalf("got %d %q events of %d within %v", total, kind, n, waitLimit)
		} else if i%2 == 0 {
			t.Fatalf("%s exited while the test waited for %q events", procs[i/2-1].name, kind)
		}
	}
}
