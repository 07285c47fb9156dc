package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/rpc"
)

// defaultBenchCalls is the number of calls when neither -n nor -z is given.
const defaultBenchCalls = 10000

func benchCommand() *command {
	b := &bencher{}
	return &command{
		name:    "bench",
		summary: "load-test a worker's method or an ipc subject: throughput, latency percentiles, histogram, chart",
		argv:    true,
		usage: `usage: procxy bench [flags] METHOD [INPUT] -- WORKER COMMAND [ARGS...]
       procxy bench [flags] -server ADDR|-nats URL SUBJECT [INPUT]

Bench starts the worker and calls METHOD with INPUT again and again from
-c callers at once, each with one call in flight, for -n calls or for -z
(10000 calls when neither is given), at most -rate calls a second if set,
after -warmup untimed calls. It prints a summary: throughput, latency
min/mean/p50/p90/p99/p99.9/max, a latency histogram and the errors, if any
(or, with -json, the same as JSON). -chart writes an SVG (or PNG) chart of
the latencies: a histogram and the latency at each percentile.

With -server or -nats instead of a worker command, each call is an ipc
request to SUBJECT (with -stream, a streamed request, timed to its end) on
that ipc server or NATS, answered by whatever serves SUBJECT there: an
ipc.Handle, procxy ipc reply. Its data is INPUT as it is (-codec raw, the
default here; msgpack for ipc's typed handlers), with -H headers.

Each call is timed from just before it is made to its answer (for a stream,
its end; for a fire-and-forget method, the write), so with -rate a call
that starts late is not counted from when it was due. Percentiles are
nearest-rank over every successful call. INPUT and the codecs are as for
procxy call; the input is encoded once. A progress bar shows on a terminal,
a line a second otherwise (-progress).

	procxy bench -c 8 -z 10s -chart echo.svg echo '"hi"' -- ./echoworker
	procxy bench -codec raw -n 100000 echoRaw @payload.bin -- node worker.mjs
	procxy bench -server procxy -c 8 -n 100000 svc.echo hello
	procxy bench -nats nats://127.0.0.1:4222 -codec msgpack calc.add '[2, 3]'

The exit status is 3 when calls failed in the worker (or the responder), 4
when it died (or the server could not be reached), 6 when nobody serves
SUBJECT.
`,
		setup: func(fs *flag.FlagSet) runFunc {
			b.fs = fs
			b.register(fs)
			return b.run
		},
	}
}

// bencher runs procxy bench.
type bencher struct {
	fs       *flag.FlagSet
	wf       workerFlags
	conn     connFlags
	header   headerFlags
	stream   bool
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
	fs.DurationVar(&b.timeout, "timeout", host.DefaultCallTimeout, "abort a call that takes longer than `duration` (a failed call); 0 means no limit")
	fs.BoolVar(&b.asJSON, "json", false, "print the summary as JSON")
	fs.StringVar(&b.chart, "chart", "", "write a latency chart to `file` (.svg or .png)")
	fs.StringVar(&b.progress, "progress", progressAuto, "progress `display`: auto (a bar on a terminal, else lines), bar, lines or none")
	b.conn.register(fs, "", "bench SUBJECT on the ipc server at `ADDR` instead of a worker's method (\"procxy\": procxy ipc serve's default)")
	fs.Var(&b.header, "H", "with -server or -nats: add a header `KEY:VALUE` to the requests (repeatable)")
	fs.BoolVar(&b.stream, "stream", false, "with -server or -nats: make streamed requests, each timed to the stream's end")
}

func (b *bencher) run(ctx context.Context, inv *invocation) error {
	onIPC := isSet(b.fs, "server") || isSet(b.fs, "nats")
	what := "method"
	if onIPC {
		what = "subject"
	}
	switch {
	case !onIPC && len(inv.argv) == 0:
		return usageErrorf("bench: no worker command: give it after --, as in procxy bench ... -- ./worker (or an ipc server with -server or -nats)")
	case onIPC && len(inv.argv) > 0:
		return usageErrorf("bench: -server and -nats bench an ipc subject: no worker command after --")
	case len(inv.args) == 0 && onIPC:
		return usageErrorf("bench: no subject given")
	case len(inv.args) == 0:
		return usageErrorf("bench: no method given (procxy list -- %s shows them)", shellJoin(inv.argv))
	case b.load.concurrency < 1:
		return usageErrorf("bench: -c must be at least 1")
	case b.calls < 0 || b.warmup < 0 || b.load.duration < 0 || b.load.rate < 0 || b.timeout < 0:
		return usageErrorf("bench: -n, -z, -rate, -warmup and -timeout must not be negative")
	case b.progress != progressAuto && b.progress != progressBar && b.progress != progressLines && b.progress != progressNone:
		return usageErrorf("bench: -progress %q: want auto, bar, lines or none", b.progress)
	case !onIPC && (b.stream || b.header.h != nil):
		return usageErrorf("bench: -stream and -H are for ipc subjects (-server or -nats)")
	}
	b.load.calls = b.calls
	if b.calls == 0 && b.load.duration == 0 {
		b.load.calls = defaultBenchCalls
	}
	if onIPC && !isSet(b.fs, "codec") && !isSet(b.fs, "request-codec") {
		b.codecs.both = "raw" // ipc data is bytes, as the other ipc commands take it
	}
	req, _, _, err := b.codecs.resolve()
	if err != nil {
		return err
	}
	input, source, err := readInput(inv, inv.args[1:], what)
	if err != nil {
		return err
	}
	payload, err := encodeInput(req, input, source)
	if err != nil {
		return err
	}
	if onIPC {
		return b.runIPC(ctx, inv, inv.args[0], payload)
	}
	b.wf.callTimeout = b.timeout
	if b.timeout == 0 {
		b.wf.callTimeout = -1
	}
	method := inv.args[0]
	return withWorker(ctx, inv, &b.wf, func(w *worker) error {
		am, err := w.method("bench", method, rpc.KindResult, rpc.KindAck, rpc.KindStream, rpc.KindNone)
		if err != nil {
			return err
		}
		t := &procwireTarget{m: w.m, method: method, payload: payload, stream: am.Kind == rpc.KindStream}
		return b.measure(ctx, inv, t, method, w.pid, func(r *benchReport) {
			r.Method, r.Kind, r.Worker, r.PID = method, am.Kind.String(), w.argv, w.pid
		})
	})
}

// runIPC benches requests to subject on an ipc server or NATS.
func (b *bencher) runIPC(ctx context.Context, inv *invocation, subject string, payload []byte) error {
	if err := checkSubjectArg("bench", subject, false); err != nil {
		return err
	}
	// Each request's deadline is the connection's -timeout: no context
	// to derive per call.
	timeout := b.timeout
	if timeout == 0 {
		timeout = -1
	}
	c, err := b.conn.dial(ctx, "bench", ipc.CallTimeout(timeout))
	if err != nil {
		return err
	}
	defer c.Close()
	t := &ipcTarget{c: c, msg: ipc.Msg{Subject: subject, Header: b.header.h, Data: payload}, stream: b.stream}
	return b.measure(ctx, inv, t, subject, 0, func(r *benchReport) {
		r.Subject, r.Server, r.Kind = subject, b.conn.where(), "request"
		if b.stream {
			r.Kind = "stream"
		}
	})
}

// measure runs the load on t and reports it; what names the method or
// subject, peer is the worker's pid (0: none to measure), and describe
// fills in the report's target.
func (b *bencher) measure(ctx context.Context, inv *invocation, t benchTarget, what string, peer int, describe func(*benchReport)) error {
	if b.warmup > 0 {
		if err := warmUp(ctx, t, b.warmup, b.load.concurrency); err != nil {
			return fmt.Errorf("bench: a warm-up call failed: %w", err)
		}
	}
	loadBefore := loadAverage()
	self0, selfOK := cpuTime(os.Getpid())
	peer0, peerOK := cpuTime(peer)
	var cnt loadCounters
	pr := startProgress(inv.stderr, b.progress, &cnt, b.load.calls, b.load.duration, what)
	res := runLoad(ctx, t, b.load, &cnt)
	pr.stop()
	self1, selfOK1 := cpuTime(os.Getpid())
	peer1, peerOK1 := cpuTime(peer)

	r := newBenchReport(res)
	describe(r)
	r.RequestBytes, r.Concurrency, r.RateLimit, r.Warmup = t.requestBytes(), b.load.concurrency, b.load.rate, b.warmup
	r.LoadBefore, r.LoadAfter = loadBefore, loadAverage()
	if secs := res.elapsed.Seconds(); secs > 0 {
		r.SentMBps = float64(r.Calls*int64(r.RequestBytes)) / secs / 1e6
	}
	if n := float64(r.Calls + r.Failed); n > 0 && selfOK && selfOK1 {
		r.CPU = &cpuPerCall{Procxy: float64(self1-self0) / 1e3 / n}
		if peer > 0 && peerOK && peerOK1 {
			r.CPU.Worker = float64(peer1-peer0) / 1e3 / n
		}
	}
	var err error
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
}

// procwireTarget calls one method of a Procwire worker.
type procwireTarget struct {
	m       *host.Module
	method  string
	payload []byte
	stream  bool
}

func (t *procwireTarget) requestBytes() int { return len(t.payload) }

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

// ipcTarget makes one ipc request (or streamed request) to a subject.
type ipcTarget struct {
	c      *ipc.Conn
	msg    ipc.Msg
	stream bool
}

func (t *ipcTarget) requestBytes() int { return t.msg.Size() }

func (t *ipcTarget) Do(ctx context.Context) (int, error) {
	m := t.msg // RequestMsg does not keep it, but callers run at once
	if !t.stream {
		resp, err := t.c.RequestMsg(ctx, &m)
		if err != nil {
			return 0, err
		}
		return resp.Size(), nil
	}
	n := 0
	for chunk, err := range t.c.RequestStream(ctx, &m) {
		if err != nil {
			return n, err
		}
		n += chunk.Size()
	}
	return n, nil
}
