package ipcbench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/bench/internal/harness"
	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/natsipc"
)

// Fleet measures procxy objects and functions served by worker processes
// (procxy.Serve) through a bus, next to the bus's own request/reply.

// BenchCalc is the type the workers serve and the object proxy's child
// constructs.
type BenchCalc struct{}

// Echo returns its argument.
func (*BenchCalc) Echo(b []byte) []byte { return b }

const calcKey = "bench.Calc"

var benchSquare = procxy.Func("bench.square", func(_ context.Context, x int) (int, error) { return x * x, nil })

func init() { procxy.Register[BenchCalc](nil, procxy.Name(calcKey)) }

// playFleet plays the fleet roles; it reports false for other roles.
func playFleet(role string, args []string) (bool, error) {
	ctx := context.Background()
	var conn *ipc.Conn
	var err error
	switch role {
	case "fleet-worker-nats": // args: url
		conn, err = natsipc.Connect(ctx, args[0])
	case "fleet-worker-ipc": // args: addr
		conn, err = ipc.Dial(ctx, args[0], ipc.Heartbeat(-1))
	default:
		return false, nil
	}
	if err != nil {
		return true, err
	}
	defer conn.Close()
	ctx, stop := context.WithCancel(ctx)
	go func() { untilStdinCloses(); stop() }()
	served := make(chan error, 1)
	go func() { served <- procxy.Serve(ctx, conn, procxy.Serving(calcKey, "bench.square")) }()
	if _, err := procxy.WaitWorkers(ctx, conn, calcKey, 1); err != nil { // this one, once its subscriptions are in place
		return true, err
	}
	ready("")
	return true, <-served
}

// caller makes one kind of call with a 16-byte payload.
type caller func(ctx context.Context, data []byte) ([]byte, error)

// FleetRow is one latency measurement.
type FleetRow struct {
	Name string
	Latency
}

// FleetLatency measures sequential 16-byte echoes: bare nats.go
// request/reply, the ipc API on NATS, a procxy object call on a worker
// over NATS, the same over the ipc server, and over a local child's
// socketpair.
func FleetLatency(ctx context.Context, cfg Config) ([]FleetRow, error) {
	var rows []FleetRow
	add := func(name string, c caller, err error) error {
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		l, err := timeCalls(ctx, c, cfg.Calls)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		rows = append(rows, FleetRow{name, l})
		return nil
	}
	natsSys, ipcSys := Systems()[2], Systems()[0]

	h, stop, err := natsSys.hub(false)
	if err != nil {
		return nil, err
	}
	defer stop()
	resp, err := spawn("nats-responder", h.info)
	if err != nil {
		return nil, err
	}
	nc, err := connectNATS(h.info)
	if err != nil {
		return nil, err
	}
	err = add("nats.go request (bare)", nc.request, nil)
	nc.close()
	if err != nil {
		return nil, err
	}
	ic, err := natsipc.Connect(ctx, h.info)
	if err != nil {
		return nil, err
	}
	err = add("ipc API on NATS (natsipc)", func(ctx context.Context, d []byte) ([]byte, error) {
		m, err := ic.Request(ctx, subjEcho, d)
		if err != nil {
			return nil, err
		}
		return m.Data, nil
	}, nil)
	resp.close()
	if err != nil {
		return nil, err
	}
	w, err := spawn("fleet-worker-nats", h.info)
	if err != nil {
		return nil, err
	}
	c, err := remoteCaller(ic)
	err = add("procxy Remote on NATS", c, err)
	w.close()
	ic.Close()
	if err != nil {
		return nil, err
	}

	ih, istop, err := ipcSys.hub(false)
	if err != nil {
		return nil, err
	}
	defer istop()
	iw, err := spawn("fleet-worker-ipc", ih.info)
	if err != nil {
		return nil, err
	}
	defer iw.close()
	iconn, err := ipc.Dial(ctx, ih.info, ipc.Heartbeat(-1))
	if err != nil {
		return nil, err
	}
	defer iconn.Close()
	c, err = remoteCaller(iconn)
	if err := add("procxy Remote on the ipc server (unix)", c, err); err != nil {
		return nil, err
	}

	p, err := procxy.New[BenchCalc](ctx, procxy.Name(calcKey))
	if err != nil {
		return nil, err
	}
	defer p.Close()
	if err := add("procxy object proxy (child, socketpair)", func(ctx context.Context, d []byte) ([]byte, error) {
		var out []byte
		err := procxy.CallInto(ctx, p, "Echo", &out, d)
		return out, err
	}, nil); err != nil {
		return nil, err
	}
	return rows, nil
}

func remoteCaller(conn *ipc.Conn) (caller, error) {
	r, err := procxy.NewRemote[BenchCalc](conn, procxy.Name(calcKey))
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, d []byte) ([]byte, error) {
		var out []byte
		err := procxy.CallInto(ctx, r, "Echo", &out, d)
		return out, err
	}, nil
}

func timeCalls(ctx context.Context, c caller, n int) (Latency, error) {
	data := harness.Payload(16)
	for range n / 10 { // warm-up
		if _, err := c(ctx, data); err != nil {
			return Latency{}, err
		}
	}
	d := make([]time.Duration, n)
	for i := range d {
		t := time.Now()
		out, err := c(ctx, data)
		d[i] = time.Since(t)
		if err != nil {
			return Latency{}, err
		}
		if len(out) != len(data) {
			return Latency{}, fmt.Errorf("echo of %d bytes came back with %d", len(data), len(out))
		}
	}
	slices.Sort(d)
	return Latency{P50: d[n/2], P99: d[n*99/100]}, nil
}

// ScaleRow is the throughput of one kind of call with some workers.
type ScaleRow struct {
	Workers     int
	ObjectPerS  float64 // procxy Remote Echo calls/s
	FuncPerS    float64 // Function.Via calls/s
	ObjectP50   time.Duration
	FuncP50     time.Duration
	WorkersUsed int // workers that served at least one call (from Workers)
}

// FleetScale measures calls/s of concurrent callers against 1, 2 and 4
// worker processes on one nats-server.
func FleetScale(ctx context.Context, cfg Config, workers []int) ([]ScaleRow, error) {
	h, stop, err := Systems()[2].hub(false)
	if err != nil {
		return nil, err
	}
	defer stop()
	conn, err := natsipc.Connect(ctx, h.info)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	r, err := procxy.NewRemote[BenchCalc](conn, procxy.Name(calcKey))
	if err != nil {
		return nil, err
	}
	sq := benchSquare.Via(conn)
	var rows []ScaleRow
	var running []*child
	defer func() {
		for _, w := range running {
			w.close()
		}
	}()
	data := harness.Payload(16)
	for _, n := range workers {
		for len(running) < n {
			w, err := spawn("fleet-worker-nats", h.info)
			if err != nil {
				return nil, err
			}
			running = append(running, w)
		}
		if _, err := procxy.WaitWorkers(ctx, conn, calcKey, n); err != nil {
			return nil, err
		}
		row := ScaleRow{Workers: n}
		row.ObjectPerS, row.ObjectP50, _, err = load(ctx, cfg, func(ctx context.Context, _ int) error {
			var out []byte
			return procxy.CallInto(ctx, r, "Echo", &out, data)
		})
		if err != nil {
			return nil, fmt.Errorf("%d workers, object: %w", n, err)
		}
		row.FuncPerS, row.FuncP50, _, err = load(ctx, cfg, func(ctx context.Context, _ int) error {
			_, err := sq.Call(ctx, 7)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("%d workers, func: %w", n, err)
		}
		ws, err := procxy.Workers(ctx, conn)
		if err != nil {
			return nil, err
		}
		for _, w := range ws {
			if w.Served > 0 {
				row.WorkersUsed++
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// load runs cfg.Requesters concurrent callers (numbered from 0) for
// cfg.GroupTime, and returns calls/s and the latency's p50 and p99.
func load(ctx context.Context, cfg Config, call func(ctx context.Context, i int) error) (perSec float64, p50, p99 time.Duration, err error) {
	var mu sync.Mutex
	var all []time.Duration
	var failed atomic.Value
	deadline := time.Now().Add(cfg.GroupTime)
	var wg sync.WaitGroup
	for i := range cfg.Requesters {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(deadline) {
				t := time.Now()
				if err := call(ctx, i); err != nil {
					failed.Store(err)
					return
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err, ok := failed.Load().(error); ok {
		return 0, 0, 0, err
	}
	if len(all) == 0 {
		return 0, 0, 0, errors.New("no call finished")
	}
	slices.Sort(all)
	return float64(len(all)) / cfg.GroupTime.Seconds(), all[len(all)/2], all[len(all)*99/100], nil
}
