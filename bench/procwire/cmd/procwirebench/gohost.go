package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/internal/backoff"
	"github.com/procxy/procxy/rpc/codec"
)

// target is one worker program, measured from one parent.
type target struct {
	Name    string   `json:"name"`    // the pair, e.g. "go-go"
	Command string   `json:"command"` // the worker program
	Args    []string `json:"args"`
	Node    bool     `json:"node"` // the worker runs on Node.js: also time `node -e 0`
	Env     []string `json:"env"`  // extra "KEY=value" for the worker (and its bare starts)
	// Procs, when set, is the parent's GOMAXPROCS while it measures this
	// target (Go host only).
	Procs int `json:"-"`
}

// params is what one measurement does; the Node script gets the same
// values (its JSON field names).
type params struct {
	Spawns     int `json:"spawns"`     // timed spawns (after one untimed)
	LatWarm    int `json:"latWarm"`    // untimed 16 B calls before the timed ones
	LatCalls   int `json:"latCalls"`   // timed sequential 16 B calls
	TputWarmMs int `json:"tputWarmMs"` // 1 KiB×inflight: warm-up before counting
	TputMs     int `json:"tputMs"`     // 1 KiB×inflight: counting time
	Inflight   int `json:"inflight"`   // calls in flight
	BigWarm    int `json:"bigWarm"`    // untimed 10 MiB calls
	BigCalls   int `json:"bigCalls"`   // timed sequential 10 MiB calls
	IdleCalls  int `json:"idleCalls"`  // 16 B calls (the first one included) before the idle wait
	IdleMs     int `json:"idleMs"`     // idle time before reading VmRSS
}

// result is one measurement of one pair; the Node script prints the same
// fields.
type result struct {
	Name        string    `json:"name"`
	SpawnMs     []float64 `json:"spawnMs"`    // spawn start → first echo returned
	ReadyMs     []float64 `json:"readyMs"`    // spawn start → ready (spawn returned)
	BareExitMs  []float64 `json:"bareExitMs"` // exec of the worker command → exit (stdin at EOF)
	BareLineMs  []float64 `json:"bareLineMs"` // exec of the worker command → first stdout line ($init)
	NodeE0Ms    []float64 `json:"nodeE0Ms"`   // exec of `node -e 0` → exit (Node workers only)
	RSSKiB      []float64 `json:"rssKiB"`     // worker VmRSS after the first calls and the idle wait
	AnonKiB     []float64 `json:"anonKiB"`    // its RssAnon
	FileKiB     []float64 `json:"fileKiB"`    // its RssFile
	P50us       float64   `json:"p50us"`
	P99us       float64   `json:"p99us"`
	CallsPerSec float64   `json:"callsPerSec"`
	GBps        float64   `json:"gbps"`
	// What the two processes did per call, over the timed 16 B run and
	// over the counted part of the 1 KiB×inflight run.
	Lat  perCall `json:"lat"`
	Tput perCall `json:"tput"`
}

var (
	b16 = bytes.Repeat([]byte{0x5a}, 16)
	b1k = func() []byte {
		b := make([]byte, 1024)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}()
	b10m = func() []byte {
		b := make([]byte, 10<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = byte(i >> 12)
		}
		return b
	}()
)

// perCall is what the parent and the worker did per call: CPU time,
// voluntary and involuntary context switches, read and write system calls
// (/proc/<pid>/stat, status of every thread, io).
type perCall struct {
	Parent side    `json:"parent"`
	Worker side    `json:"worker"`
	Cores  float64 `json:"cores"` // CPU time of both ÷ wall time (throughput run only)
}

type side struct {
	CPUus  float64 `json:"cpuUs"`
	Vcs    float64 `json:"vcs"`
	Ics    float64 `json:"ics"`
	Reads  float64 `json:"reads"`
	Writes float64 `json:"writes"`
}

func diff(p0, p1, w0, w1 usage, calls int, wall time.Duration) perCall {
	n := float64(max(calls, 1))
	d := func(a, b usage) side {
		return side{CPUus: float64(b.cpu-a.cpu) / 1e3 / n, Vcs: float64(b.vcs-a.vcs) / n, Ics: float64(b.ics-a.ics) / n,
			Reads: float64(b.syscr-a.syscr) / n, Writes: float64(b.syscw-a.syscw) / n}
	}
	pc := perCall{Parent: d(p0, p1), Worker: d(w0, w1)}
	if wall > 0 {
		pc.Cores = float64(p1.cpu-p0.cpu+w1.cpu-w0.cpu) / float64(wall)
	}
	return pc
}

// goHost measures a worker driven by procxy's host package.
type goHost struct {
	p      params
	env    []string // extra environment for every child (the run marker)
	node   string   // node, for `node -e 0`
	logger *slog.Logger
	seq    int
}

func (g *goHost) newModule(t target) (*host.Module, error) {
	g.seq++
	return host.NewModule(host.Config{
		Name:       fmt.Sprintf("%s-%d", t.Name, g.seq),
		Executable: t.Command,
		Args:       t.Args,
		Env:        append(slices.Clone(g.env), t.Env...),
		// The parent's view: only echoRaw (a parent may declare a subset).
		Methods: []host.Method{{Name: "echoRaw", Request: codec.Raw, Response: codec.Raw}},
		Policy:  host.Policy{MaxRetries: -1},
		Logger:  g.logger,
	})
}

func echo(ctx context.Context, m *host.Module, in []byte) ([]byte, error) {
	out, err := host.Call[[]byte](ctx, m, "echoRaw", in)
	if err == nil && len(out) != len(in) {
		err = fmt.Errorf("echoRaw: sent %d bytes, got %d", len(in), len(out))
	}
	return out, err
}

func shutdown(m *host.Module) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	m.Shutdown(ctx) // kills the child when ctx ends; returns once it exited
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func (g *goHost) measure(ctx context.Context, t target) (r result, err error) {
	r.Name = t.Name
	env := append(append(os.Environ(), g.env...), t.Env...)
	if t.Procs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(t.Procs))
	}
	runtime.GC() // start each target from a collected heap (the 10 MiB echoes of the last one)

	// Spawn → first call, interleaved with bare starts of the same program
	// (and of `node -e 0` for a Node worker). One untimed spawn first.
	for i := -1; i < g.p.Spawns; i++ {
		bExit, bLine, err := bare(ctx, t.Command, t.Args, env)
		if err != nil {
			return r, err
		}
		var e0 time.Duration
		if t.Node {
			if e0, _, err = bare(ctx, g.node, []string{"-e", "0"}, env); err != nil {
				return r, err
			}
		}
		m, err := g.newModule(t)
		if err != nil {
			return r, err
		}
		t0 := time.Now()
		err = m.Spawn(ctx)
		t1 := time.Now()
		if err == nil {
			_, err = echo(ctx, m, b16)
		}
		t2 := time.Now()
		for k := 1; k < g.p.IdleCalls && err == nil; k++ {
			_, err = echo(ctx, m, b16)
		}
		if err == nil {
			err = backoff.Sleep(ctx, time.Duration(g.p.IdleMs)*time.Millisecond)
		}
		var mem memory
		if err == nil {
			mem, err = vmRSS(m.PID())
		}
		shutdown(m)
		if err != nil {
			return r, fmt.Errorf("%s: spawn %d: %w", t.Name, i, err)
		}
		if i < 0 {
			continue
		}
		r.SpawnMs = append(r.SpawnMs, ms(t2.Sub(t0)))
		r.ReadyMs = append(r.ReadyMs, ms(t1.Sub(t0)))
		r.BareExitMs = append(r.BareExitMs, ms(bExit))
		r.BareLineMs = append(r.BareLineMs, ms(bLine))
		if t.Node {
			r.NodeE0Ms = append(r.NodeE0Ms, ms(e0))
		}
		r.RSSKiB = append(r.RSSKiB, mem.rss)
		r.AnonKiB = append(r.AnonKiB, mem.anon)
		r.FileKiB = append(r.FileKiB, mem.file)
	}

	m, err := g.newModule(t)
	if err != nil {
		return r, err
	}
	if err := m.Spawn(ctx); err != nil {
		return r, err
	}
	defer shutdown(m)

	// 16 B sequential round trips, each timed.
	for range g.p.LatWarm {
		if _, err := echo(ctx, m, b16); err != nil {
			return r, err
		}
	}
	lat := make([]time.Duration, g.p.LatCalls)
	pid := m.PID()
	p0, w0 := selfUsage(), procUsage(pid)
	for i := range lat {
		s := time.Now()
		out, err := host.Call[[]byte](ctx, m, "echoRaw", b16)
		lat[i] = time.Since(s)
		if err != nil {
			return r, err
		}
		if !bytes.Equal(out, b16) {
			return r, errors.New("16 B echo mismatch")
		}
	}
	r.Lat = diff(p0, selfUsage(), w0, procUsage(pid), len(lat), 0)
	slices.Sort(lat)
	r.P50us = float64(pct(lat, 0.50)) / 1e3
	r.P99us = float64(pct(lat, 0.99)) / 1e3

	// 1 KiB with Inflight calls in flight: that many goroutines, each with
	// one call outstanding at a time.
	var (
		calls    atomic.Int64
		counting atomic.Bool
		stop     atomic.Bool
		wg       sync.WaitGroup
		errOnce  sync.Once
		loopErr  error
	)
	for range g.p.Inflight {
		wg.Go(func() {
			for !stop.Load() {
				out, err := echo(ctx, m, b1k)
				if err == nil && out[1023] != 0xff {
					err = errors.New("1 KiB echo mismatch")
				}
				if err != nil {
					errOnce.Do(func() { loopErr = err })
					stop.Store(true)
					return
				}
				if counting.Load() {
					calls.Add(1)
				}
			}
		})
	}
	backoff.Sleep(ctx, time.Duration(g.p.TputWarmMs)*time.Millisecond)
	counting.Store(true)
	ts := time.Now()
	p0, w0 = selfUsage(), procUsage(pid)
	backoff.Sleep(ctx, time.Duration(g.p.TputMs)*time.Millisecond)
	p1, w1 := selfUsage(), procUsage(pid)
	elapsed := time.Since(ts)
	counting.Store(false)
	stop.Store(true)
	wg.Wait()
	if loopErr != nil {
		return r, loopErr
	}
	if err := ctx.Err(); err != nil {
		return r, err
	}
	r.CallsPerSec = float64(calls.Load()) / elapsed.Seconds()
	r.Tput = diff(p0, p1, w0, w1, int(calls.Load()), elapsed)

	// 10 MiB sequential echoes.
	for range g.p.BigWarm {
		if _, err := echo(ctx, m, b10m); err != nil {
			return r, err
		}
	}
	var last []byte
	bs := time.Now()
	for range g.p.BigCalls {
		if last, err = echo(ctx, m, b10m); err != nil {
			return r, err
		}
	}
	r.GBps = float64(g.p.BigCalls*len(b10m)) / time.Since(bs).Seconds() / 1e9
	if !bytes.Equal(last, b10m) {
		return r, errors.New("10 MiB echo mismatch")
	}
	return r, nil
}

func pct(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// bare starts path with stdin at EOF (/dev/null) and returns how long
// until it exited and until its first stdout line arrived. A Procwire
// worker starts up, prints $init, sees the end of stdin and exits 0.
func bare(ctx context.Context, path string, args, env []string) (exit, line time.Duration, err error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	br := bufio.NewReader(stdout)
	if _, err := br.ReadSlice('\n'); err == nil {
		line = time.Since(t0)
	} else {
		line = -1
	}
	io.Copy(io.Discard, br)
	err = cmd.Wait()
	exit = time.Since(t0)
	if err != nil {
		return 0, 0, fmt.Errorf("%s %v: %w", path, args, err)
	}
	return exit, line, nil
}
