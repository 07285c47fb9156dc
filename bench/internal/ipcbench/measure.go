package ipcbench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/procxy/procxy/bench/internal/harness"
	"github.com/procxy/procxy/ipc"
)

// Config sizes a run.
type Config struct {
	Rounds      int           // every measurement this many times, in rotation; medians are reported
	Calls       int           // sequential requests per latency run
	PubMsgs16   int           // messages per 16 B pub/sub run
	PubMsgs16K  int           // messages per 16 KiB pub/sub run
	Requesters  int           // concurrent requesters against the queue group
	GroupTime   time.Duration // length of the queue-group run
	IdleClients int           // connections for the memory measure
	SkipIdle    bool
}

// DefaultConfig takes a few minutes on 2 cores.
func DefaultConfig() Config {
	return Config{Rounds: 3, Calls: 20000, PubMsgs16: 300000, PubMsgs16K: 20000, Requesters: 50, GroupTime: 2 * time.Second, IdleClients: 1000}
}

// QuickConfig is a smoke run.
func QuickConfig() Config {
	return Config{Rounds: 1, Calls: 2000, PubMsgs16: 20000, PubMsgs16K: 2000, Requesters: 50, GroupTime: 300 * time.Millisecond, IdleClients: 100}
}

// client is the measuring process's connection to a bus.
type client interface {
	request(ctx context.Context, data []byte) ([]byte, error)
	publish(subject string, data []byte) error
	flush() error
	close()
}

// System is one message bus: how to start its hub and connect to it.
type System struct {
	Name      string // "ipc", "nats"
	Transport string // "unix", "tcp"
	hubRole   string
	hubArgs   func(dir string) []string
	respRole  string
	subRole   string
	connect   func(addr string) (client, error)
}

// Label is "name/transport".
func (s System) Label() string { return s.Name + "/" + s.Transport }

// Systems lists the buses compared.
func Systems() []System {
	return []System{
		{Name: "ipc", Transport: "unix", hubRole: "ipc-hub", hubArgs: func(dir string) []string { return []string{filepath.Join(dir, "hub.sock")} },
			respRole: "ipc-responder", subRole: "ipc-sub", connect: connectIPC},
		{Name: "ipc", Transport: "tcp", hubRole: "ipc-hub", hubArgs: func(string) []string { return []string{"tcp://127.0.0.1:0"} },
			respRole: "ipc-responder", subRole: "ipc-sub", connect: connectIPC},
		{Name: "nats", Transport: "tcp", hubRole: "nats-server", hubArgs: func(string) []string { return nil },
			respRole: "nats-responder", subRole: "nats-sub", connect: connectNATS},
	}
}

type ipcClient struct{ c *ipc.Conn }

func connectIPC(addr string) (client, error) {
	c, err := ipc.Dial(context.Background(), addr, ipc.Heartbeat(-1), ipc.CallTimeout(time.Minute))
	if err != nil {
		return nil, err
	}
	return ipcClient{c}, nil
}

func (c ipcClient) request(ctx context.Context, data []byte) ([]byte, error) {
	m, err := c.c.Request(ctx, subjEcho, data)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}
func (c ipcClient) publish(s string, d []byte) error { return c.c.Publish(s, d) }
func (c ipcClient) flush() error                     { return c.c.Flush(context.Background()) }
func (c ipcClient) close()                           { c.c.Close() }

type natsClient struct{ nc *nats.Conn }

func connectNATS(url string) (client, error) {
	nc, err := nats.Connect(url)
	if err != nil {
		return nil, err
	}
	return natsClient{nc}, nil
}

func (c natsClient) request(ctx context.Context, data []byte) ([]byte, error) {
	m, err := c.nc.RequestWithContext(ctx, subjEcho, data)
	if err != nil {
		return nil, err
	}
	return m.Data, nil
}
func (c natsClient) publish(s string, d []byte) error { return c.nc.Publish(s, d) }
func (c natsClient) flush() error                     { return c.nc.Flush() }
func (c natsClient) close()                           { c.nc.Close() }

// hub starts a system's hub; echo makes the hub itself answer requests
// (ipc only: NATS has no handlers in its server).
func (s System) hub(echo bool) (*child, func(), error) {
	dir, err := os.MkdirTemp("", "ipcb")
	if err != nil {
		return nil, nil, err
	}
	args := s.hubArgs(dir)
	if echo {
		args = append(args, "echo")
	}
	h, err := spawn(s.hubRole, args...)
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return h, func() { h.close(); os.RemoveAll(dir) }, nil
}

// Latency is a sequential run's percentiles.
type Latency struct{ P50, P99 time.Duration }

func timeRequests(ctx context.Context, c client, size, n int) (Latency, error) {
	data := harness.Payload(size)
	for range n / 10 { // warm-up
		if _, err := c.request(ctx, data); err != nil {
			return Latency{}, err
		}
	}
	d := make([]time.Duration, n)
	for i := range d {
		t := time.Now()
		out, err := c.request(ctx, data)
		d[i] = time.Since(t)
		if err != nil {
			return Latency{}, err
		}
		if len(out) != size {
			return Latency{}, fmt.Errorf("echo of %d bytes came back with %d", size, len(out))
		}
	}
	slices.Sort(d)
	return Latency{P50: d[n/2], P99: d[n*99/100]}, nil
}

// Floor measures the raw Unix-socket ping-pong.
func Floor(ctx context.Context, cfg Config) (Latency, error) {
	cli, err := harness.Contenders()[0].Start()
	if err != nil {
		return Latency{}, err
	}
	defer cli.Close()
	l, err := harness.MeasureLatency(ctx, cli, harness.Small, cfg.Calls/10, cfg.Calls)
	return Latency{P50: l.P50, P99: l.P99}, err
}

// ToServer measures requests answered by a handler in the hub process.
func (s System) ToServer(ctx context.Context, cfg Config) (Latency, error) {
	h, stop, err := s.hub(true)
	if err != nil {
		return Latency{}, err
	}
	defer stop()
	c, err := s.connect(h.info)
	if err != nil {
		return Latency{}, err
	}
	defer c.close()
	return timeRequests(ctx, c, 16, cfg.Calls)
}

// ViaHub measures requests answered by a responder process through the hub.
func (s System) ViaHub(ctx context.Context, cfg Config) (Latency, error) {
	h, stop, err := s.hub(false)
	if err != nil {
		return Latency{}, err
	}
	defer stop()
	r, err := spawn(s.respRole, h.info)
	if err != nil {
		return Latency{}, err
	}
	defer r.close()
	c, err := s.connect(h.info)
	if err != nil {
		return Latency{}, err
	}
	defer c.close()
	return timeRequests(ctx, c, 16, cfg.Calls)
}

// PubSub is a fan-out run's result.
type PubSub struct {
	MsgsPerSec float64 // messages delivered per second, all subscribers together
	Delivered  float64 // fraction of the messages each subscriber got, the lowest
}

// PubSub publishes n messages of size bytes to subs subscriber processes.
func (s System) PubSub(ctx context.Context, size, subs, n int) (PubSub, error) {
	h, stop, err := s.hub(false)
	if err != nil {
		return PubSub{}, err
	}
	defer stop()
	var children []*child
	defer func() {
		for _, c := range children {
			c.close()
		}
	}()
	for range subs {
		c, err := spawn(s.subRole, h.info)
		if err != nil {
			return PubSub{}, err
		}
		children = append(children, c)
	}
	pub, err := s.connect(h.info)
	if err != nil {
		return PubSub{}, err
	}
	defer pub.close()
	data := harness.Payload(size)
	start := time.Now()
	for range n {
		if err := pub.publish(subjPub+".data", data); err != nil {
			return PubSub{}, err
		}
	}
	if err := pub.publish(subjPub+".end", nil); err != nil {
		return PubSub{}, err
	}
	if err := pub.flush(); err != nil {
		return PubSub{}, err
	}
	var total int64
	var last time.Time
	lowest := 1.0
	for _, c := range children {
		got, at, err := c.got(time.Minute)
		if err != nil {
			return PubSub{}, err
		}
		total += got
		if at.After(last) {
			last = at
		}
		lowest = min(lowest, float64(got)/float64(n))
	}
	return PubSub{MsgsPerSec: float64(total) / last.Sub(start).Seconds(), Delivered: lowest}, nil
}

// Group is a queue-group run's result.
type Group struct {
	PerSec   float64
	P50, P99 time.Duration
}

// QueueGroup runs requesters, each with its own connection, against two
// responder processes in one queue group.
func (s System) QueueGroup(ctx context.Context, cfg Config) (Group, error) {
	h, stop, err := s.hub(false)
	if err != nil {
		return Group{}, err
	}
	defer stop()
	for range 2 {
		r, err := spawn(s.respRole, h.info, "workers")
		if err != nil {
			return Group{}, err
		}
		defer r.close()
	}
	conns := make([]client, cfg.Requesters)
	for i := range conns {
		if conns[i], err = s.connect(h.info); err != nil {
			return Group{}, err
		}
		defer conns[i].close()
	}
	data := harness.Payload(16)
	perSec, p50, p99, err := load(ctx, cfg, func(ctx context.Context, i int) error {
		_, err := conns[i].request(ctx, data)
		return err
	})
	return Group{PerSec: perSec, P50: p50, P99: p99}, err
}

// IdleRSS returns the hub's resident memory before and with n idle clients.
func (s System) IdleRSS(ctx context.Context, n int) (before, with int64, err error) {
	h, stop, err := s.hub(false)
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	if before, err = rss(h.pid()); err != nil {
		return 0, 0, err
	}
	conns := make([]client, 0, n)
	defer func() {
		for _, c := range conns {
			c.close()
		}
	}()
	for range n {
		c, err := s.connect(h.info)
		if err != nil {
			return 0, 0, err
		}
		conns = append(conns, c)
	}
	for _, c := range conns { // every connection is established and idle
		if err := c.flush(); err != nil {
			return 0, 0, err
		}
	}
	with, err = rss(h.pid())
	return before, with, err
}
