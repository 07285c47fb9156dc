package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/rpc"
)

// defaultBenchCalls is the number of calls when neither -n nor -z is given.
const defaultBenchCalls = 10000

func benchCommand() *command {
	b := &bencher{}
	return &command{
		name:    "bench",
		summary: "load-test a worker's method: throughput, latency percentiles, histogram, chart",
		worker:  true,
		usage: `usage: procxy bench [flags] METHOD [INPUT] -- WORKER COMMAND [ARGS...]

Bench starts the worker and calls METHOD with INPUT again and again from
-c callers at once, each with one call in flight, for -n calls or for -z
(10000 calls when neither is given), at most -rate calls a second if set,
after -warmup untimed calls. It prints a summary: throughput, latency
min/mean/p50/p90/p99/p99.9/max, a latency histogram and the errors, if any
(or, with -json, the same as JSON). -chart writes an SVG (or PNG) chart of
the latencies: a histogram and the latency at each percentile.

Each call is timed from just before it is made to its answer (for a stream,
its end; for a fire-and-forget method, the write), so with -rate a call
that starts late is not counted from when it was due. Percentiles are
nearest-rank over every successful call. INPUT and the codecs are as for
procxy call; the input is encoded once. A progress bar shows on a terminal,
a line a second otherwise (-progress).

	procxy bench -c 8 -z 10s -chart echo.svg echo '"hi"' -- ./echoworker
	procxy bench -codec raw -n 100000 echoRaw @payload.bin -- node worker.mjs

The exit status is 3 when calls failed in the worker, 4 when it died.
`,
		setup: func(fs *flag.FlagSet) runFunc {
			b.register(fs)
			return b.run
		},
	}
}

// bencher runs procxy bench.
type bencher struct {
	wf       workerFlags
	codecs   codecFlags
	load     loadConfig
	calls    int64
	warmup   int64
	timeout  time.Duration
	asJSON   bool
	chart    string
	progress string
}

func (b *bencher) register(fs *flag.FlagSet) {
	b.wf.register(fs)
	b.codecs.register(fs, false)
	fs.IntVar(&b.load.concurrency, "c", 1, "`callers` at once, each with one call in flight")
	fs.Int64Var(&b.calls, "n", 0, "`calls` to make in all (default 10000, or no limit with -z)")
	fs.DurationVar(&b.load.duration, "z", 0, "make calls for this `duration` (with -n too, stop at whichever comes first)")
	fs.Float64Var(&b.load.rate, "rate", 0, "at most this many `calls` a second over all callers (default no limit)")
	fs.Int64Var(&b.warmup, "warmup", 0, "untimed `calls` before the measured ones")
	fs.DurationVar(&b.timeout, "timeout", host.DefaultRequestTimeout, "abort a call that takes longer than `duration` (a failed call); 0 means no limit")
	fs.BoolVar(&b.asJSON, "json", false, "print the summary as JSON")
	fs.StringVar(&b.chart, "chart", "", "write a latency chart to `file` (.svg or .png)")
	fs.StringVar(&b.progress, "progress", progressAuto, "progress `display`: auto (a bar on a terminal, else lines), bar, lines or none")
}

func (b *bencher) run(ctx context.Context, inv *invocation) error {
	if len(inv.args) == 0 {
		return usageErrorf("bench: no method given (procxy list -- %s shows them)", shellJoin(inv.argv))
	}
	method := inv.args[0]
	switch {
	case b.load.concurrency < 1:
		return usageErrorf("bench: -c must be at least 1")
	case b.calls < 0 || b.warmup < 0 || b.load.duration < 0 || b.load.rate < 0 || b.timeout < 0:
		return usageErrorf("bench: -n, -z, -rate, -warmup and -timeout must not be negative")
	case b.progress != progressAuto && b.progress != progressBar && b.progress != progressLines && b.progress != progressNone:
		return usageErrorf("bench: -progress %q: want auto, bar, lines or none", b.progress)
	}
	b.load.calls = b.calls
	if b.calls == 0 && b.load.duration == 0 {
		b.load.calls = defaultBenchCalls
	}
	req, _, _, err := b.codecs.resolve()
	if err != nil {
		return err
	}
	input, source, err := readInput(inv, inv.args[1:])
	if err != nil {
		return err
	}
	payload, err := encodeInput(req, input, source)
	if err != nil {
		return err
	}
	b.wf.requestTimeout = b.timeout
	if b.timeout == 0 {
		b.wf.requestTimeout = -1
	}
	return withWorker(ctx, inv, &b.wf, func(w *worker) error {
		am, err := w.method("bench", method, rpc.KindResult, rpc.KindAck, rpc.KindStream, rpc.KindNone)
		if err != nil {
			return err
		}
		t := &procwireTarget{m: w.m, method: method, payload: payload, stream: am.Kind == rpc.KindStream}
		if b.warmup > 0 {
			if err := warmUp(ctx, t, b.warmup, b.load.concurrency); err != nil {
				return fmt.Errorf("bench: a warm-up call failed: %w", err)
			}
		}
		loadBefore := loadAverage()
		self0, selfOK := cpuTime(os.Getpid())
		worker0, workerOK := cpuTime(w.pid)
		var cnt loadCounters
		pr := startProgress(inv.stderr, b.progress, &cnt, b.load.calls, b.load.duration, method)
		res := runLoad(ctx, t, b.load, &cnt)
		pr.stop()
		self1, selfOK1 := cpuTime(os.Getpid())
		worker1, workerOK1 := cpuTime(w.pid)

		r := newBenchReport(res)
		r.Method, r.Kind, r.Worker, r.PID = method, am.Kind.String(), w.argv, w.pid
		r.RequestBytes, r.Concurrency, r.RateLimit, r.Warmup = len(payload), b.load.concurrency, b.load.rate, b.warmup
		r.LoadBefore, r.LoadAfter = loadBefore, loadAverage()
		if secs := res.elapsed.Seconds(); secs > 0 {
			r.SentMBps = float64(r.Calls*int64(len(payload))) / secs / 1e6
		}
		if n := float64(r.Calls + r.Failed); n > 0 && selfOK && selfOK1 && workerOK && workerOK1 {
			r.CPU = &cpuPerCall{Procxy: float64(self1-self0) / 1e3 / n, Worker: float64(worker1-worker0) / 1e3 / n}
		}
		if b.asJSON {
			enc := json.NewEncoder(inv.stdout)
			enc.SetIndent("", "  ")
			err = enc.Encode(r)
		} else {
			err = r.writeText(inv.stdout)
		}
		if err != nil {
			return err
		}
		if b.chart != "" && r.Calls > 0 {
			if err := writeChart(b.chart, r); err != nil {
				return err
			}
		}
		switch {
		case res.stopped:
			return &callAborted{msg: fmt.Sprintf("the benchmark was stopped after %d calls", r.Calls+r.Failed)}
		case res.failed > 0:
			return fmt.Errorf("%d of %d calls failed; the first: %w", res.failed, res.failed+r.Calls, res.firstErr)
		}
		return nil
	})
}

// procwireTarget calls one method of a Procwire worker.
type procwireTarget struct {
	m       *host.Module
	method  string
	payload []byte
	stream  bool
}

func (t *procwireTarget) Do(ctx context.Context) (int, error) {
	if !t.stream {
		out, err := t.m.Invoke(ctx, t.method, t.payload)
		return len(out), err
	}
	n := 0
	for chunk, err := range t.m.InvokeStream(ctx, t.method, t.payload) {
		if err != nil {
			return n, err
		}
		n += len(chunk)
	}
	return n, nil
}
