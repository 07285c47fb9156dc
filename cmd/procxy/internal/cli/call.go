package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
)

func callCommand() *command {
	return &command{
		name:    "call",
		summary: "call a worker's method with JSON and print the answer",
		worker:  true,
		usage: `usage: procxy call [flags] METHOD [INPUT] -- WORKER COMMAND [ARGS...]

Call starts the worker, calls METHOD (a result, ack or fire-and-forget
method) with INPUT, prints the answer on stdout and the worker's events on
stderr as they arrive, and stops the worker. Ctrl-C aborts the call in the
worker. The exit status is 3 when the method failed in the worker.

INPUT is JSON, "@FILE" for a file's content, "@-" for stdin; without it
the input is read from stdin (empty input is null). It is converted to the
method's request codec (-codec): msgpack (the default; see below), json, or
raw, for which the input is the payload's bytes as they are. The answer is
converted back: JSON indented for a person, raw bytes as they are (a hex
dump on a terminal when they are not text). With -json, stdout has one
JSON object per line: {"event": NAME, "data": …} for each event, then
{"result": …}, {"ack": …}, {"sent": true} or {"error": {…}}.

msgpack values that JSON lacks are written, and read, as one-member
objects: {"$bytes": "<base64>"} (a Buffer), {"$date": "<RFC 3339>"} (a
Date), {"$ext": {"type": N, "data": "<base64>"}}, {"$float": "NaN"}.
Object keys keep their order.

	procxy call echo '"hi"' -- ./echoworker
	procxy call -codec raw echoRaw @photo.jpg -- node worker.mjs > copy.jpg
	echo '{"message": "no"}' | procxy call fail -- ./echoworker
`,
		setup: func(fs *flag.FlagSet) runFunc {
			c := &caller{}
			c.register(fs)
			fs.IntVar(&c.events, "events", 0, "after the answer, wait until `N` events have arrived in all, counting those during the call (bounded by -timeout and Ctrl-C)")
			return func(ctx context.Context, inv *invocation) error { return c.run(ctx, inv, false) }
		},
	}
}

func streamCommand() *command {
	return &command{
		name:    "stream",
		summary: "call a worker's stream method and print each chunk as it arrives",
		worker:  true,
		usage: `usage: procxy stream [flags] METHOD [INPUT] -- WORKER COMMAND [ARGS...]

Stream starts the worker, calls the stream method METHOD with INPUT and
prints each chunk as it arrives: one line of JSON per chunk, or, with a
raw response codec, the chunks' bytes back to back. Events go to stderr as
they arrive. Ctrl-C, or -timeout, aborts the stream in the worker. INPUT,
codecs and -json are as for procxy call; with -json each chunk is
{"chunk": …} and the end is {"end": true, "chunks": N}.

	procxy stream count '{"n": 3}' -- ./echoworker
`,
		setup: func(fs *flag.FlagSet) runFunc {
			c := &caller{}
			c.register(fs)
			return func(ctx context.Context, inv *invocation) error { return c.run(ctx, inv, true) }
		},
	}
}

// caller runs procxy call and procxy stream.
type caller struct {
	wf      workerFlags
	codecs  codecFlags
	asJSON  bool
	timeout time.Duration
	events  int // call only: events to have seen before returning

	req, resp, ev codec.Codec
	out           *lineWriter
	live          context.Context // the call's: events after it ends are not shown
	method        string
	seen          chan struct{} // one value per event, for -events
}

func (c *caller) register(fs *flag.FlagSet) {
	c.wf.register(fs)
	c.codecs.register(fs, true)
	fs.BoolVar(&c.asJSON, "json", false, "write JSON lines for scripts on stdout: events, then the answer or error")
	fs.DurationVar(&c.timeout, "timeout", 0, "abort the call after `duration` (default none but the worker's own timeout for the method)")
}

func (c *caller) run(ctx context.Context, inv *invocation, stream bool) error {
	if len(inv.args) == 0 {
		return usageErrorf("%s: no method given (procxy list -- %s shows them)", inv.name, shellJoin(inv.argv))
	}
	c.method = inv.args[0]
	var err error
	if c.req, c.resp, c.ev, err = c.codecs.resolve(); err != nil {
		return err
	}
	if c.events < 0 {
		return usageErrorf("%s: -events must not be negative", inv.name)
	}
	input, source, err := readInput(inv, inv.args[1:], "method")
	if err != nil {
		return err
	}
	payload, err := encodeInput(c.req, input, source)
	if err != nil {
		return err
	}
	c.out = &lineWriter{stdout: inv.stdout, stderr: inv.stderr}
	return withWorker(ctx, inv, &c.wf, func(w *worker) error {
		kinds := []rpc.Kind{rpc.KindResult, rpc.KindAck, rpc.KindNone}
		if stream {
			kinds = []rpc.Kind{rpc.KindStream}
		}
		am, err := w.method(inv.name, c.method, kinds...)
		if err != nil {
			return err
		}
		if c.events > 0 && len(w.schema.Events) == 0 {
			return usageErrorf("%s: -events %d, but the worker announces no events", inv.name, c.events)
		}
		if c.timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, c.timeout)
			defer cancel()
		}
		c.live = ctx
		defer c.listen(w)()
		start := time.Now()
		if stream {
			err = c.stream(ctx, w, payload)
		} else {
			err = c.call(ctx, w, am, payload)
		}
		if c.wf.verbose && err == nil {
			fmt.Fprintf(inv.stderr, "procxy: %s took %s\n", c.method, round(time.Since(start)))
		}
		if err != nil {
			return c.fail(ctx, am, err)
		}
		return c.awaitEvents(ctx)
	})
}

// listen prints every event the worker announced as it arrives, and
// returns the function that stops listening.
func (c *caller) listen(w *worker) (remove func()) {
	c.seen = make(chan struct{}, max(c.events, 1))
	var removes []func()
	for _, ev := range w.schema.Events {
		name := ev.Name
		removes = append(removes, host.OnEventPayload(w.m, name, func(p []byte) {
			c.event(name, p)
			select {
			case c.seen <- struct{}{}:
			default:
			}
		}))
	}
	return func() {
		for _, r := range removes {
			r()
		}
	}
}

func (c *caller) event(name string, p []byte) {
	if c.live.Err() != nil {
		// The call was given up (-timeout, Ctrl-C): what the worker
		// sends as it stops (an event saying it was aborted, say) came
		// after, and is not the call's.
		return
	}
	v, err := decodeOutput(c.ev, p, fmt.Sprintf("the payload of event %q", name))
	if err != nil {
		c.out.event(func() { fmt.Fprintf(c.out.stderr, "procxy: %v\n", err) })
		return
	}
	if c.asJSON {
		c.out.event(func() { c.out.stdout.Write(append(appendJSON(nil, object{{"event", name}, {"data", v}}), '\n')) })
		return
	}
	c.out.event(func() { fmt.Fprintf(c.out.stderr, "[event %s] %s\n", name, appendJSON(nil, v)) })
}

func (c *caller) call(ctx context.Context, w *worker, am host.AnnouncedMethod, payload []byte) error {
	if am.Kind == rpc.KindNone {
		c.out.hold()
		defer c.out.release()
	}
	answer, err := w.m.Invoke(ctx, c.method, payload)
	if err != nil {
		return err
	}
	if am.Kind == rpc.KindNone {
		if c.asJSON {
			c.out.json(object{{"sent", true}})
		}
		return nil
	}
	key := "result"
	if am.Kind == rpc.KindAck {
		key = "ack"
		if len(answer) == 0 { // an ack without data
			if c.asJSON {
				c.out.json(object{{"ack", nil}})
			} else {
				c.out.stderrf("procxy: %s acknowledged, without data\n", c.method)
			}
			return nil
		}
	}
	v, err := decodeOutput(c.resp, answer, fmt.Sprintf("the answer of %s", c.method))
	if err != nil {
		return err
	}
	if c.asJSON {
		c.out.json(object{{key, v}})
		return nil
	}
	if b, ok := v.([]byte); ok && c.resp == codec.Raw {
		return c.out.raw(b)
	}
	return c.out.stdoutLine(indentJSON(appendJSON(nil, v)))
}

func (c *caller) stream(ctx context.Context, w *worker, payload []byte) error {
	n := 0
	for chunk, err := range w.m.InvokeStream(ctx, c.method, payload) {
		if err != nil {
			return err
		}
		n++
		v, err := decodeOutput(c.resp, chunk, fmt.Sprintf("chunk %d of %s", n, c.method))
		if err != nil {
			return err
		}
		switch b, raw := v.([]byte); {
		case c.asJSON:
			c.out.json(object{{"chunk", v}})
		case raw && c.resp == codec.Raw:
			if err := c.out.raw(b); err != nil {
				return err
			}
		default:
			if err := c.out.stdoutLine(appendJSON(nil, v)); err != nil {
				return err
			}
		}
	}
	if c.asJSON {
		c.out.json(object{{"end", true}, {"chunks", int64(n)}})
	}
	return nil
}

// awaitEvents waits until -events N events have arrived.
func (c *caller) awaitEvents(ctx context.Context) error {
	for i := range c.events {
		select {
		case <-c.seen:
		case <-ctx.Done():
			err := fmt.Errorf("%d of the %d events asked for by -events arrived: %w", i, c.events, ctx.Err())
			if errors.Is(err, context.DeadlineExceeded) {
				return err
			}
			return &callAborted{msg: err.Error()}
		}
	}
	return nil
}

// fail reports a failed call: JSON on stdout with -json, the stack with
// -v, and an error whose message is one line.
func (c *caller) fail(ctx context.Context, am host.AnnouncedMethod, err error) error {
	// The error is the last thing printed: an event the worker sends as
	// it gives up (an aborted call's, say) is not shown after it.
	c.out.endEvents()
	var re *rpc.RemoteError
	if errors.As(err, &re) {
		if c.asJSON {
			e := object{{"message", re.Message}}
			for _, m := range []member{{"name", re.Name}, {"code", re.Code}, {"stack", re.Stack}} {
				if m.val != "" {
					e = append(e, m)
				}
			}
			if !plainErrorData(re.Data) {
				e = append(e, member{"data", re.Data})
			}
			c.out.json(object{{"error", e}})
		}
		if c.wf.verbose && re.Stack != "" {
			c.out.stderrf("procxy: the worker's stack:\n%s\n", strings.TrimRight(re.Stack, "\n"))
		}
		return &remoteFailure{method: c.method, re: re}
	}
	var msg, reason string
	var ee *host.ExitError
	switch {
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return &callAborted{msg: fmt.Sprintf("%s was aborted in the worker", c.method)}
	case errors.Is(err, host.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		limit := fmt.Sprintf("-timeout %v", c.timeout)
		if ctx.Err() == nil {
			limit = fmt.Sprintf("the worker's timeout for it, %v", am.Timeout)
		}
		msg, reason = fmt.Sprintf("%s did not finish within %s; it was aborted in the worker", c.method, limit), "timeout"
	case errors.As(err, &ee):
		how := fmt.Sprintf("exited with status %d", ee.Code)
		if ee.Signal != 0 {
			how = fmt.Sprintf("was killed by signal %v", ee.Signal)
		}
		msg, reason = fmt.Sprintf("the worker (pid %d) %s during %s", ee.PID, how, c.method), "worker exited"
		if line := telling(ee.Stderr); line != "" {
			msg += fmt.Sprintf("; its stderr said %q", line)
		}
	default:
		return err
	}
	if c.asJSON {
		c.out.json(object{{"error", object{{"message", msg}, {"reason", reason}}}})
	}
	return &callError{msg: msg, err: err}
}

// remoteFailure is a method that failed in the worker.
type remoteFailure struct {
	method string
	re     *rpc.RemoteError
	where  string // "the worker" when empty
}

func (e *remoteFailure) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed in %s: ", e.method, cmp.Or(e.where, "the worker"))
	if n := e.re.Name; n != "" && n != "Error" && !strings.HasPrefix(n, "*errors.") && !strings.HasPrefix(n, "*fmt.") {
		fmt.Fprintf(&b, "%s: ", n) // a Go error's name is its type: shown unless it is a plain one
	}
	b.WriteString(e.re.Message)
	if e.re.Code != "" {
		fmt.Fprintf(&b, " (code %s)", e.re.Code)
	}
	return strings.ReplaceAll(b.String(), "\n", " ")
}

func (e *remoteFailure) Unwrap() error { return e.re }

// plainErrorData reports whether an error payload holds nothing but the
// message, name, code and stack already shown.
func plainErrorData(v any) bool {
	m, ok := v.(map[string]any)
	if !ok {
		_, ok = v.(string)
		return ok
	}
	for k := range m {
		switch k {
		case "message", "name", "code", "stack":
		default:
			return false
		}
	}
	return true
}

// callError is a call that failed for another reason than the method.
type callError struct {
	msg string
	err error
}

func (e *callError) Error() string { return e.msg }
func (e *callError) Unwrap() error { return e.err }

// callAborted is a call cut short by Ctrl-C.
type callAborted struct{ msg string }

func (e *callAborted) Error() string { return e.msg }

// lineWriter serializes the command's output lines: events arrive on
// another goroutine than the answer.
type lineWriter struct {
	mu             sync.Mutex
	stdout, stderr *output
	eventsEnded    bool     // guarded by mu
	holding        bool     // events wait in held until release; guarded by mu
	held           []func() // guarded by mu
}

// event runs write, which prints an event, unless events have ended; it
// keeps it for later while events are held.
func (o *lineWriter) event(write func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.eventsEnded:
	case o.holding:
		o.held = append(o.held, write)
	default:
		write()
	}
}

// hold keeps events from printing until release: a fire-and-forget call's
// "sent" comes first, though its events may arrive before it is printed.
func (o *lineWriter) hold() {
	o.mu.Lock()
	o.holding = true
	o.mu.Unlock()
}

// release prints the held events and lets the next ones print at once.
func (o *lineWriter) release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.holding = false
	for _, write := range o.held {
		if !o.eventsEnded {
			write()
		}
	}
	o.held = nil
}

// endEvents stops the printing of events: none prints after it returns.
func (o *lineWriter) endEvents() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.eventsEnded = true
}

func (o *lineWriter) json(v object) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stdout.Write(append(appendJSON(nil, v), '\n'))
}

func (o *lineWriter) stdoutLine(b []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, err := o.stdout.Write(append(b, '\n'))
	return err
}

func (o *lineWriter) raw(b []byte) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return writeRaw(o.stdout, b)
}

func (o *lineWriter) stderrf(format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	fmt.Fprintf(o.stderr, format, args...)
}
