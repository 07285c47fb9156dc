package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/rpc/codec"
)

// ipcRequestDefaultTimeout is procxy ipc request's -timeout, as the nats
// command has it.
const ipcRequestDefaultTimeout = 5 * time.Second

func ipcRequestCommand() *command {
	return &command{
		name:    "ipc request",
		summary: "send a request and print the reply",
		usage: `usage: procxy ipc request [flags] SUBJECT [DATA]

Request sends DATA to SUBJECT (the argument, "@FILE", or standard input
as for procxy ipc pub) and prints the first reply's data as it is — with
-codec msgpack or json, its value as indented JSON — or, with -json, one
line {"header": {KEY: [VALUE…]}, "data": …}. -v adds on stderr how long
the reply took and its headers.

The request carries its deadline, -timeout: the responder's context has
it, and when it passes, or Ctrl-C cancels the request, the responder's
context is cancelled (on NATS too). The exit status is 3 when the
responder answered with an error (with -json, {"error": {…}} on stdout),
4 when it went away before answering, 5 when no reply came within
-timeout and 6 when nobody subscribes to SUBJECT.

	procxy ipc request svc.echo hello
	procxy ipc request -codec msgpack calc.add '[2, 3]'   # an ipc.Handle[[2]int, int]
	procxy ipc request -timeout 1m -H Trace-Id:42 reports.build @params.json
`,
		setup: func(fs *flag.FlagSet) runFunc {
			r := &requestFlags{}
			r.register(fs, ipcRequestDefaultTimeout, "give up, and cancel the request in the responder, after `duration`; 0 means no limit")
			return func(ctx context.Context, inv *invocation) error { return r.run(ctx, inv, false) }
		},
	}
}

func ipcStreamCommand() *command {
	return &command{
		name:    "ipc stream",
		summary: "send a request and print its streamed reply as it arrives",
		usage: `usage: procxy ipc stream [flags] SUBJECT [DATA]

Stream sends DATA to SUBJECT as a request whose reply is a stream — what
an ipc.HandleStream handler or a Msg.Stream writer sends — and prints each
chunk as it arrives: raw data back to back, with -codec msgpack or json a
line of JSON a chunk, with -json {"chunk": …} a line and {"end": true,
"chunks": N} last. The stream's flow control holds the responder back
when the output is slow. Ctrl-C or -timeout cancels it in the responder.
DATA, headers and the exit status are as for procxy ipc request.

	procxy ipc stream -codec msgpack logs.tail '{"lines": 100}'
`,
		setup: func(fs *flag.FlagSet) runFunc {
			r := &requestFlags{}
			r.register(fs, 0, "give up, and cancel the stream in the responder, after `duration` (default no limit)")
			return func(ctx context.Context, inv *invocation) error { return r.run(ctx, inv, true) }
		},
	}
}

// requestFlags run procxy ipc request and procxy ipc stream.
type requestFlags struct {
	conn    connFlags
	header  headerFlags
	timeout time.Duration
	codec   string
	asJSON  bool
	verbose bool

	cd      codec.Codec
	out     *lineWriter
	subject string
}

func (r *requestFlags) register(fs *flag.FlagSet, timeout time.Duration, timeoutUsage string) {
	r.conn.register(fs, defaultServer(), serverFlagUsage)
	fs.Var(&r.header, "H", "add a header `KEY:VALUE` (repeatable)")
	fs.DurationVar(&r.timeout, "timeout", timeout, timeoutUsage)
	fs.StringVar(&r.codec, "codec", "raw", ipcCodecUsage+", of the request and the reply")
	fs.BoolVar(&r.asJSON, "json", false, "print JSON lines for scripts: the reply (or each chunk) with its headers, or the error")
	fs.BoolVar(&r.verbose, "v", false, "verbose: how long the reply took, and its headers, on stderr")
}

func (r *requestFlags) run(ctx context.Context, inv *invocation, stream bool) error {
	cmd := inv.name
	if len(inv.args) == 0 {
		return usageErrorf("%s: no subject given", cmd)
	}
	r.subject = inv.args[0]
	if err := checkSubjectArg(cmd, r.subject, false); err != nil {
		return err
	}
	if r.timeout < 0 {
		return usageErrorf("%s: -timeout must not be negative", cmd)
	}
	var err error
	if r.cd, err = ipcCodec(cmd, r.codec); err != nil {
		return err
	}
	input, source, err := readData(inv, inv.args[1:])
	if err != nil {
		return err
	}
	data, err := encodeData(r.cd, input, source)
	if err != nil {
		return err
	}
	r.out = &lineWriter{stdout: inv.stdout, stderr: inv.stderr}
	// The deadline is -timeout's alone: none of the connection's own.
	c, err := r.conn.dial(ctx, cmd, ipc.CallTimeout(-1))
	if err != nil {
		return err
	}
	defer c.Close()
	rctx := ctx
	if r.timeout > 0 {
		var cancel context.CancelFunc
		rctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	m := &ipc.Msg{Subject: r.subject, Header: r.header.h, Data: data}
	start := time.Now()
	if stream {
		err = r.stream(rctx, c, m, start)
	} else {
		err = r.request(rctx, c, m, start)
	}
	if err != nil {
		return r.fail(ctx, err)
	}
	return nil
}

func (r *requestFlags) request(ctx context.Context, c *ipc.Conn, m *ipc.Msg, start time.Time) error {
	resp, err := c.RequestMsg(ctx, m)
	if err != nil {
		return err
	}
	r.verbosef(resp, "reply", start)
	if r.asJSON {
		return r.jsonLine(nil, resp)
	}
	return r.print(resp.Data, true)
}

func (r *requestFlags) stream(ctx context.Context, c *ipc.Conn, m *ipc.Msg, start time.Time) error {
	n := 0
	for chunk, err := range c.RequestStream(ctx, m) {
		if err != nil {
			return err
		}
		n++
		r.verbosef(chunk, fmt.Sprintf("chunk %d", n), start)
		if r.asJSON {
			if err := r.jsonLine(object{{"chunk", nil}}, chunk); err != nil {
				return err
			}
			continue
		}
		if err := r.print(chunk.Data, false); err != nil {
			return err
		}
	}
	if r.verbose {
		r.out.stderrf("procxy: the stream from %s ended after %d chunks in %s\n", r.subject, n, round(time.Since(start)))
	}
	if r.asJSON {
		r.out.json(object{{"end", true}, {"chunks", int64(n)}})
	}
	return nil
}

// print writes reply data: raw as it is (a hex dump on a terminal when
// it is not text; whole replies get a newline there), decoded values as
// JSON (indented for a whole reply, a line for a chunk).
func (r *requestFlags) print(data []byte, whole bool) error {
	if r.cd == codec.Raw {
		if err := r.out.raw(data); err != nil {
			return err
		}
		if whole && r.out.stdout.terminal && len(data) > 0 && data[len(data)-1] != '\n' {
			return r.out.stdoutLine(nil)
		}
		return nil
	}
	v, err := decodeOutput(r.cd, data, "the reply")
	if err != nil {
		return err
	}
	j := appendJSON(nil, v)
	if whole {
		j = indentJSON(j)
	}
	return r.out.stdoutLine(j)
}

// jsonLine writes a reply as a JSON line: {"header": …, "data": …}, or,
// when wrap has one member, that member holding it.
func (r *requestFlags) jsonLine(wrap object, m *ipc.Msg) error {
	o := object{}
	if len(m.Header) > 0 {
		o = append(o, member{"header", headerValue(m.Header)})
	}
	v := rawValue(m.Data)
	if r.cd != codec.Raw {
		var err error
		if v, err = decodeOutput(r.cd, m.Data, "the reply"); err != nil {
			return err
		}
	}
	o = append(o, member{"data", v})
	if wrap != nil {
		wrap[0].val = o
		o = wrap
	}
	r.out.json(o)
	return nil
}

func (r *requestFlags) verbosef(m *ipc.Msg, what string, start time.Time) {
	if !r.verbose {
		return
	}
	r.out.stderrf("procxy: %s from %s after %s, %d bytes\n", what, r.subject, round(time.Since(start)), len(m.Data))
	if len(m.Header) > 0 {
		r.out.stderrf("%s", appendHeaders(nil, m.Header))
	}
}

// fail turns a failed request into the command's error, and with -json
// also writes it on stdout.
func (r *requestFlags) fail(ctx context.Context, err error) error {
	e := requestFailed(&r.conn, r.subject, r.timeout, ctx, err)
	if r.asJSON {
		o := object{{"message", e.Error()}}
		var re *ipc.RemoteError
		switch {
		case errors.As(err, &re):
			o = object{{"message", re.Message}}
			for _, m := range []member{{"name", re.Name}, {"code", re.Code}} {
				if m.val != "" {
					o = append(o, m)
				}
			}
			o = append(o, member{"reason", "remote error"})
		case errors.Is(err, ipc.ErrNoResponders):
			o = append(o, member{"reason", "no responders"})
		case errors.Is(err, context.DeadlineExceeded):
			o = append(o, member{"reason", "timeout"})
		case errors.Is(err, ipc.ErrResponderGone):
			o = append(o, member{"reason", "responder gone"})
		}
		r.out.json(object{{"error", o}})
	}
	return e
}
