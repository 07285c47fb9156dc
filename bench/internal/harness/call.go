package harness

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/procxy/procxy"
)

// The "proxied call" section: one method call with two ints in and one int
// out, Add(a, b int) int, made sequentially on each stack below. Its floor
// is the raw ping-pong of floor.go with a 16-byte payload (two int64s in;
// the same 16 bytes come back, and the client adds them).

// CallClient is the parent's end of one call contender.
type CallClient interface {
	Adder
	// PID is the child's process id.
	PID() int
	// Close ends the connection and the child process.
	Close() error
}

// CallContender is one way of making the Add call in a child process.
type CallContender struct {
	Name      string // "floor", "procxy rpc add", "procxy object Call", …
	Transport string
	Start     func() (CallClient, error)
}

// Label is "name/transport".
func (c CallContender) Label() string { return c.Name + "/" + c.Transport }

// CallContenders lists the call section's contenders, the floor first.
func CallContenders() []CallContender {
	return []CallContender{
		{"floor", string(Unix), func() (CallClient, error) { return startFloorAdd(Unix) }},
		{"procxy rpc add", string(Unix), func() (CallClient, error) { return startProcxyAdd(Unix) }},
		{"procxy rpc add", string(Socketpair), func() (CallClient, error) { return startProcxyAdd(Socketpair) }},
		{"procxy object Call", string(Socketpair), func() (CallClient, error) { return startObject(false) }},
		{"procxy object stub", string(Socketpair), func() (CallClient, error) { return startObject(true) }},
		// Diagnostic: CallTimeout(-1) skips the connection's timeout watch that
		// every call under the default 30 s Timeout joins.
		{"procxy object Call, CallTimeout(-1)", string(Socketpair), func() (CallClient, error) {
			return startObject(false, procxy.CallTimeout(-1))
		}},
		{"go-plugin/netrpc", string(Unix), func() (CallClient, error) { return startPluginCalc(pluginNetRPCCalc) }},
		{"go-plugin/grpc", string(Unix), func() (CallClient, error) { return startPluginCalc(pluginGRPCCalc) }},
	}
}

// CallResult is what is measured for one call contender.
type CallResult struct {
	Contender string  `json:"contender"`
	Transport string  `json:"transport"`
	P10       int64   `json:"p10_ns"`
	P50       int64   `json:"p50_ns"`
	P99       int64   `json:"p99_ns"`
	Allocs    float64 `json:"allocs_per_call"`
	// CPU time per timed call: this process (everything in it, not only
	// the calling goroutine) and the child; 0 when unknown.
	ParentCPU int64  `json:"parent_cpu_ns_per_call"`
	ChildCPU  int64  `json:"child_cpu_ns_per_call"`
	Error     string `json:"error,omitempty"`
}

// RunCall starts c's child, times cfg.CallCalls sequential Add calls after
// cfg.CallWarmup untimed ones, and stops the child.
func RunCall(ctx context.Context, c CallContender, cfg Config) (res CallResult) {
	res = CallResult{Contender: c.Name, Transport: c.Transport}
	cli, err := c.Start()
	if err != nil {
		res.Error = "start: " + err.Error()
		return res
	}
	defer func() {
		if err := cli.Close(); err != nil && res.Error == "" {
			res.Error = "close: " + err.Error()
		}
	}()
	fail := func(err error) CallResult {
		res.Error = "add: " + err.Error()
		return res
	}
	add := adder(ctx, cli)
	for range cfg.CallWarmup {
		if err := add(); err != nil {
			return fail(err)
		}
	}
	pid := cli.PID()
	self0, child0 := selfCPU(), procCPU(pid)
	lat, err := timeCalls(cfg.CallCalls, add)
	if err != nil {
		return fail(err)
	}
	self1, child1 := selfCPU(), procCPU(pid)
	res.P10, res.P50, res.P99, res.Allocs = int64(lat.P10), int64(lat.P50), int64(lat.P99), lat.Allocs
	n := time.Duration(cfg.CallCalls)
	res.ParentCPU = int64((self1 - self0) / n)
	if child0 >= 0 && child1 >= 0 {
		res.ChildCPU = int64((child1 - child0) / n)
	}
	return res
}

// MedianCall is Median for call results.
func MedianCall(runs []CallResult) CallResult {
	ok := succeeded(runs, func(r CallResult) string { return r.Error })
	if len(ok) == 0 {
		return runs[0]
	}
	med := func(get func(CallResult) float64) float64 { return median(ok, get) }
	return CallResult{
		Contender: ok[0].Contender,
		Transport: ok[0].Transport,
		P10:       int64(med(func(r CallResult) float64 { return float64(r.P10) })),
		P50:       int64(med(func(r CallResult) float64 { return float64(r.P50) })),
		P99:       int64(med(func(r CallResult) float64 { return float64(r.P99) })),
		Allocs:    med(func(r CallResult) float64 { return r.Allocs }),
		ParentCPU: int64(med(func(r CallResult) float64 { return float64(r.ParentCPU) })),
		ChildCPU:  int64(med(func(r CallResult) float64 { return float64(r.ChildCPU) })),
	}
}

// floorAdder is the floor client carrying Add: a and b as two big-endian
// int64s, echoed by the floor server; the client adds the two it gets back.
type floorAdder struct {
	c   *floorClient
	mu  sync.Mutex
	in  [2 * 8]byte // guarded by mu
	out []byte      // guarded by mu
}

func startFloorAdd(tr Transport) (CallClient, error) {
	cli, err := startFloor(tr)
	if err != nil {
		return nil, err
	}
	return &floorAdder{c: cli.(*floorClient), out: make([]byte, 0, 16)}, nil
}

func (f *floorAdder) Add(ctx context.Context, a, b int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	binary.BigEndian.PutUint64(f.in[:8], uint64(a))
	binary.BigEndian.PutUint64(f.in[8:], uint64(b))
	var err error
	if f.out, err = f.c.Echo(ctx, f.in[:], f.out); err != nil {
		return 0, err
	}
	if len(f.out) != 16 {
		return 0, fmt.Errorf("floor: %d bytes back, want 16", len(f.out))
	}
	return int(binary.BigEndian.Uint64(f.out[:8])) + int(binary.BigEndian.Uint64(f.out[8:])), nil
}

func (f *floorAdder) PID() int     { return f.c.child.PID() }
func (f *floorAdder) Close() error { return f.c.Close() }

// startProcxyAdd is the rpc-level add of procxy.go: an rpc.Conn calling a
// ResultFunc(func(ctx, [2]int) (int, error)), no reflection.
func startProcxyAdd(tr Transport) (CallClient, error) {
	cli, err := startProcxy(tr)
	if err != nil {
		return nil, err
	}
	return cli.(*procxyClient), nil
}

// PID is the child's process id.
func (c *procxyClient) PID() int { return c.child.PID() }
