package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Config sizes one benchmark run.
type Config struct {
	Rounds       int           // times every contender is run, in rotation; the table shows medians
	Warmup       int           // untimed sequential calls before each latency run
	Calls        int           // timed sequential calls per latency run
	InFlight     int           // concurrent callers in the throughput run
	ParallelTime time.Duration // length of the throughput run (after a warm-up of a tenth of it)
	BigCalls     int           // timed 10 MiB echoes (after one untimed)
	HugeCalls    int           // timed 64 MiB echoes (after one untimed)
	CallWarmup   int           // untimed Add calls before each call-section run
	CallCalls    int           // timed sequential Add calls per call-section run
}

// DefaultConfig finishes all contenders of both sections in under two
// minutes on 2 cores.
// Three rounds in rotation, rather than one long run each, keep a burst of
// load from another process from landing on a single contender.
func DefaultConfig() Config {
	return Config{Rounds: 3, Warmup: 1000, Calls: 10000, InFlight: 64, ParallelTime: 1500 * time.Millisecond, BigCalls: 20,
		HugeCalls: 5, CallWarmup: 2000, CallCalls: 20000}
}

// QuickConfig is a smoke run of a few thousand calls per contender.
func QuickConfig() Config {
	return Config{Rounds: 1, Warmup: 200, Calls: 2000, InFlight: 64, ParallelTime: 300 * time.Millisecond, BigCalls: 5,
		HugeCalls: 2, CallWarmup: 200, CallCalls: 2000}
}

// Payload sizes.
const (
	Small = 16
	Mid   = 1 << 10
	Big   = 10 << 20
	Huge  = 64 << 20
)

// Latency summarises a sequential run.
type Latency struct {
	P10, P50, P99 time.Duration
	Allocs        float64 // client-process mallocs per call (runtime.MemStats)
}

// Result is everything measured for one contender. Throughputs count the
// payload one way (the request bytes; the same number come back).
type Result struct {
	Contender      string  `json:"contender"`
	Transport      string  `json:"transport"`
	P50Small       int64   `json:"p50_16B_ns"`
	P99Small       int64   `json:"p99_16B_ns"`
	P50Mid         int64   `json:"p50_1KiB_ns"`
	P99Mid         int64   `json:"p99_1KiB_ns"`
	AllocsPerCall  float64 `json:"allocs_per_call_16B"`
	ParCallsPerSec float64 `json:"inflight64_1KiB_calls_per_s"`
	ParMBps        float64 `json:"inflight64_1KiB_MB_per_s"`
	BigGBps        float64 `json:"echo_10MiB_GB_per_s"`
	HugeGBps       float64 `json:"echo_64MiB_GB_per_s"`
	// What one 16 B call cost each process over the timed run: CPU time
	// (ns) and voluntary context switches; -1 when unknown.
	ParentCPU16 float64 `json:"parent_cpu_ns_per_16B_call"`
	ChildCPU16  float64 `json:"child_cpu_ns_per_16B_call"`
	ParentCS16  float64 `json:"parent_switches_per_16B_call"`
	ChildCS16   float64 `json:"child_switches_per_16B_call"`
	AddP50      int64   `json:"add_p50_ns,omitempty"`
	AddP99      int64   `json:"add_p99_ns,omitempty"`
	AddAllocs   float64 `json:"add_allocs_per_call,omitempty"`
	Error       string  `json:"error,omitempty"`
}

// Run starts c's child, measures it and stops it. A failure is reported in
// Result.Error with whatever was measured before it.
func Run(ctx context.Context, c Contender, cfg Config) Result {
	res := Result{Contender: c.Name, Transport: c.Transport}
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
	fail := func(what string, err error) Result {
		res.Error = what + ": " + err.Error()
		return res
	}
	pid := -1
	if p, ok := cli.(interface{ PID() int }); ok {
		pid = p.PID()
	}
	var cost Cost
	lat, err := measureLatency(ctx, cli, Small, cfg.Warmup, cfg.Calls, pid, &cost)
	if err != nil {
		return fail("16B", err)
	}
	res.P50Small, res.P99Small, res.AllocsPerCall = int64(lat.P50), int64(lat.P99), lat.Allocs
	res.ParentCPU16, res.ChildCPU16, res.ParentCS16, res.ChildCS16 = cost.ParentCPU, cost.ChildCPU, cost.ParentCS, cost.ChildCS
	if lat, err = MeasureLatency(ctx, cli, Mid, cfg.Warmup, cfg.Calls); err != nil {
		return fail("1KiB", err)
	}
	res.P50Mid, res.P99Mid = int64(lat.P50), int64(lat.P99)
	rate, err := MeasureParallel(ctx, cli, Mid, cfg.InFlight, cfg.ParallelTime)
	if err != nil {
		return fail("1KiB in flight", err)
	}
	res.ParCallsPerSec, res.ParMBps = rate, rate*Mid/1e6
	bps, err := MeasureBig(ctx, cli, Big, cfg.BigCalls)
	if err != nil {
		return fail("10MiB", err)
	}
	res.BigGBps = bps / 1e9
	if cfg.HugeCalls > 0 {
		if bps, err = MeasureBig(ctx, cli, Huge, cfg.HugeCalls); err != nil {
			return fail("64MiB", err)
		}
		res.HugeGBps = bps / 1e9
	}
	if a, ok := cli.(Adder); ok {
		lat, err := MeasureAdd(ctx, a, cfg.Warmup, cfg.Calls)
		if err != nil {
			return fail("add", err)
		}
		res.AddP50, res.AddP99, res.AddAllocs = int64(lat.P50), int64(lat.P99), lat.Allocs
	}
	return res
}

// Payload returns n bytes of a recognisable pattern.
func Payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

// MeasureLatency times n sequential echoes of size bytes after warmup
// untimed ones, checking every response.
func MeasureLatency(ctx context.Context, cli Client, size, warmup, n int) (Latency, error) {
	return measureLatency(ctx, cli, size, warmup, n, -1, nil)
}

// Cost is what one call cost each process: CPU time in nanoseconds and
// voluntary context switches (each a wake-up after the process waited);
// -1 when unknown.
type Cost struct {
	ParentCPU, ChildCPU, ParentCS, ChildCS float64
}

// costMeter snapshots the counters of this process and the child pid.
type costMeter struct {
	pid                   int
	selfCPU, childCPU     time.Duration
	selfSwitch, childSwit int64
}

func startCost(pid int) costMeter {
	m := costMeter{pid: pid, selfCPU: selfCPU(), selfSwitch: selfSwitches(), childCPU: -1, childSwit: -1}
	if pid > 0 {
		m.childCPU, m.childSwit = procCPU(pid), procSwitches(pid)
	}
	return m
}

// stop returns the cost per call over n calls since start.
func (m costMeter) stop(n int) Cost {
	per := func(before, after float64) float64 {
		if before < 0 || after < 0 {
			return -1
		}
		return (after - before) / float64(n)
	}
	c := Cost{
		ParentCPU: per(float64(m.selfCPU), float64(selfCPU())),
		ParentCS:  per(float64(m.selfSwitch), float64(selfSwitches())),
		ChildCPU:  -1,
		ChildCS:   -1,
	}
	if m.pid > 0 {
		c.ChildCPU = per(float64(m.childCPU), float64(procCPU(m.pid)))
		c.ChildCS = per(float64(m.childSwit), float64(procSwitches(m.pid)))
	}
	return c
}

// measureLatency is MeasureLatency that also fills cost, when it is not
// nil, with what the timed calls cost this process and the child pid.
func measureLatency(ctx context.Context, cli Client, size, warmup, n, pid int, cost *Cost) (Latency, error) {
	in := Payload(size)
	out := make([]byte, 0, size)
	var err error
	for range warmup {
		if out, err = cli.Echo(ctx, in, out); err != nil {
			return Latency{}, err
		}
	}
	if !bytes.Equal(out, in) {
		return Latency{}, fmt.Errorf("echo returned %d bytes that differ from the %d sent", len(out), len(in))
	}
	meter := startCost(pid)
	lat, err := timeCalls(n, func() error {
		out, err = cli.Echo(ctx, in, out)
		if err == nil && !bytes.Equal(out, in) {
			err = errors.New("echo differs from the request")
		}
		return err
	})
	if cost != nil && err == nil {
		*cost = meter.stop(n)
	}
	return lat, err
}

// MeasureAdd is MeasureLatency for an Add call.
func MeasureAdd(ctx context.Context, a Adder, warmup, n int) (Latency, error) {
	call := adder(ctx, a)
	for range warmup {
		if err := call(); err != nil {
			return Latency{}, err
		}
	}
	return timeCalls(n, call)
}

// adder returns a func making one Add(i, 3) call (i counting up) and
// checking its result.
func adder(ctx context.Context, a Adder) func() error {
	i := 0
	return func() error {
		i++
		sum, err := a.Add(ctx, i, 3)
		if err == nil && sum != i+3 {
			err = fmt.Errorf("add(%d, 3) = %d", i, sum)
		}
		return err
	}
}

// timeCalls runs call n times, timing each call and counting the mallocs
// of the whole process (so the client's connection goroutines count too).
// The bytes.Equal check in call allocates nothing.
func timeCalls(n int, call func() error) (Latency, error) {
	durs := make([]time.Duration, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range durs {
		t0 := time.Now()
		err := call()
		durs[i] = time.Since(t0)
		if err != nil {
			return Latency{}, err
		}
	}
	runtime.ReadMemStats(&after)
	slices.Sort(durs)
	return Latency{
		P10:    durs[n/10],
		P50:    durs[n/2],
		P99:    durs[min(n-1, n*99/100)],
		Allocs: float64(after.Mallocs-before.Mallocs) / float64(n),
	}, nil
}

// MeasureParallel runs inFlight callers echoing size bytes for d (after
// d/10 of warm-up) and returns completed calls per second.
func MeasureParallel(ctx context.Context, cli Client, size, inFlight int, d time.Duration) (float64, error) {
	if _, err := parallel(ctx, cli, size, inFlight, d/10); err != nil {
		return 0, err
	}
	t0 := time.Now()
	calls, err := parallel(ctx, cli, size, inFlight, d)
	return float64(calls) / time.Since(t0).Seconds(), err
}

func parallel(ctx context.Context, cli Client, size, inFlight int, d time.Duration) (int64, error) {
	var (
		stop  atomic.Bool
		calls atomic.Int64
		once  sync.Once
		first error
		wg    sync.WaitGroup
	)
	for range inFlight {
		wg.Go(func() {
			in := Payload(size)
			out := make([]byte, 0, size)
			var err error
			for !stop.Load() {
				out, err = cli.Echo(ctx, in, out)
				if err == nil && !bytes.Equal(out, in) {
					err = errors.New("echo differs from the request")
				}
				if err != nil {
					once.Do(func() { first = err })
					stop.Store(true)
					return
				}
				calls.Add(1)
			}
		})
	}
	t := time.AfterFunc(d, func() { stop.Store(true) })
	wg.Wait()
	t.Stop()
	return calls.Load(), first
}

// MeasureBig times n sequential echoes of size bytes after one untimed
// echo and returns payload bytes per second, counted one way.
func MeasureBig(ctx context.Context, cli Client, size, n int) (float64, error) {
	in := Payload(size)
	out, err := cli.Echo(ctx, in, make([]byte, 0, size))
	if err != nil {
		return 0, err
	}
	if !bytes.Equal(out, in) {
		return 0, fmt.Errorf("%d-byte echo differs from the request", size)
	}
	t0 := time.Now()
	for range n {
		out[0], out[len(out)-1] = 0, 0
		if out, err = cli.Echo(ctx, in, out); err != nil {
			return 0, err
		}
		if len(out) != size || out[0] != in[0] || out[size-1] != in[size-1] {
			return 0, fmt.Errorf("%d-byte echo differs from the request", size)
		}
	}
	return float64(n) * float64(size) / time.Since(t0).Seconds(), nil
}

// Median combines runs of one contender metric by metric: each field is
// the median over the runs that succeeded (the upper median for an even
// count). With no successful run it returns the first run's error.
func Median(runs []Result) Result {
	ok := succeeded(runs, func(r Result) string { return r.Error })
	if len(ok) == 0 {
		return runs[0]
	}
	med := func(get func(Result) float64) float64 { return median(ok, get) }
	medI := func(get func(Result) int64) int64 {
		return int64(med(func(r Result) float64 { return float64(get(r)) }))
	}
	return Result{
		Contender:      ok[0].Contender,
		Transport:      ok[0].Transport,
		P50Small:       medI(func(r Result) int64 { return r.P50Small }),
		P99Small:       medI(func(r Result) int64 { return r.P99Small }),
		P50Mid:         medI(func(r Result) int64 { return r.P50Mid }),
		P99Mid:         medI(func(r Result) int64 { return r.P99Mid }),
		AllocsPerCall:  med(func(r Result) float64 { return r.AllocsPerCall }),
		ParCallsPerSec: med(func(r Result) float64 { return r.ParCallsPerSec }),
		ParMBps:        med(func(r Result) float64 { return r.ParMBps }),
		BigGBps:        med(func(r Result) float64 { return r.BigGBps }),
		HugeGBps:       med(func(r Result) float64 { return r.HugeGBps }),
		ParentCPU16:    med(func(r Result) float64 { return r.ParentCPU16 }),
		ChildCPU16:     med(func(r Result) float64 { return r.ChildCPU16 }),
		ParentCS16:     med(func(r Result) float64 { return r.ParentCS16 }),
		ChildCS16:      med(func(r Result) float64 { return r.ChildCS16 }),
		AddP50:         medI(func(r Result) int64 { return r.AddP50 }),
		AddP99:         medI(func(r Result) int64 { return r.AddP99 }),
		AddAllocs:      med(func(r Result) float64 { return r.AddAllocs }),
	}
}

// succeeded returns the runs whose error text is empty.
func succeeded[R any](runs []R, errOf func(R) string) []R {
	var ok []R
	for _, r := range runs {
		if errOf(r) == "" {
			ok = append(ok, r)
		}
	}
	return ok
}

// median returns the upper median of get over runs (at least one).
func median[R any](runs []R, get func(R) float64) float64 {
	vs := make([]float64, len(runs))
	for i, r := range runs {
		vs[i] = get(r)
	}
	slices.Sort(vs)
	return vs[len(vs)/2]
}
