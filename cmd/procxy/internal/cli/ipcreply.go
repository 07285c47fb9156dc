package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/procxy/procxy/childproc"
	"github.com/procxy/procxy/ipc"
)

// defaultReplyQueue is the queue group of procxy ipc reply, so that
// several of them share the requests, as nats reply does.
const defaultReplyQueue = "procxy"

func ipcReplyCommand() *command {
	return &command{
		name:    "ipc reply",
		summary: "answer requests: an echo, a fixed response or a command's output",
		argv:    true,
		usage: `usage: procxy ipc reply [flags] SUBJECT [RESPONSE]
       procxy ipc reply [flags] SUBJECT -- COMMAND [ARGS...]

Reply answers the requests to SUBJECT (wildcards allowed) until Ctrl-C or
-count requests:

  - with RESPONSE (an argument, or "@FILE" for a file's content), with it;
  - with a command after --, with what the command writes on stdout when
    it runs with the request's data on stdin, a new process per request,
    with PROCXY_IPC_SUBJECT and PROCXY_IPC_REPLY in its environment; to a
    streamed request (procxy ipc stream, ipc.Stream), a chunk per line of
    its output as it writes it. When the requester gives up (its deadline,
    Ctrl-C, its process dying), the command gets SIGTERM. A command that
    fails is answered as an error: the requester gets its exit status and
    the last line of its stderr;
  - with neither, with the request's own data and headers (an echo).

-H adds headers to every response. Replies join queue group -queue
("procxy" by default; "" for none), so that several of them share the
requests, one each. Each request is printed as procxy ipc sub prints
messages (-q: not; -json: as JSON lines); -c answers that many at once.

	procxy ipc reply svc.echo
	procxy ipc reply -codec msgpack calc.add 5                 # for ipc.Call[int]
	procxy ipc reply svc.upper -- tr a-z A-Z
	procxy ipc reply -c 4 'jobs.*' -- sh -c 'sleep 1; echo done'
`,
		setup: func(fs *flag.FlagSet) runFunc {
			r := &replyFlags{}
			r.conn.register(fs, defaultServer(), serverFlagUsage)
			fs.StringVar(&r.queue, "queue", defaultReplyQueue, "queue `group` the replier joins; \"\" for none (each replier then answers every request)")
			fs.IntVar(&r.count, "count", 0, "exit after answering `N` requests (default: until Ctrl-C)")
			fs.IntVar(&r.concurrency, "c", 1, "answer `N` requests at once")
			fs.Var(&r.header, "H", "add a header `KEY:VALUE` to every response (repeatable)")
			fs.StringVar(&r.codec, "codec", "raw", ipcCodecUsage+", of RESPONSE and of the requests printed")
			fs.BoolVar(&r.asJSON, "json", false, "print each request as a line of JSON")
			fs.BoolVar(&r.quiet, "q", false, "quiet: do not print the requests")
			return r.run
		},
	}
}

type replyFlags struct {
	conn        connFlags
	queue       string
	count       int
	concurrency int
	header      headerFlags
	codec       string
	asJSON      bool
	quiet       bool

	response   []byte   // a fixed response, or nil
	argv       []string // a command to run per request, or nil
	maxPayload int
	out        *lineWriter
	printer    *msgPrinter
	n          atomic.Int64 // requests received
	answered   atomic.Int64
	done       chan struct{} // closed after -count answers
	doneOnce   sync.Once
}

func (r *replyFlags) run(ctx context.Context, inv *invocation) error {
	const cmd = "ipc reply"
	switch {
	case len(inv.args) == 0:
		return usageErrorf("%s: no subject given", cmd)
	case len(inv.args) > 2:
		return usageErrorf("%s: one response at most after the subject, got %d (quote it)", cmd, len(inv.args)-1)
	case len(inv.args) == 2 && len(inv.argv) > 0:
		return usageErrorf("%s: a RESPONSE or a command after --, not both", cmd)
	case r.count < 0:
		return usageErrorf("%s: -count must not be negative", cmd)
	case r.concurrency < 1:
		return usageErrorf("%s: -c must be at least 1", cmd)
	}
	subject := inv.args[0]
	if err := checkSubjectArg(cmd, subject, true); err != nil {
		return err
	}
	if r.queue != "" && !ipc.ValidLiteral(r.queue) {
		return usageErrorf("%s: invalid queue group %q: a name without spaces or wildcards", cmd, r.queue)
	}
	cd, err := ipcCodec(cmd, r.codec)
	if err != nil {
		return err
	}
	if len(inv.args) == 2 {
		input, source, err := readInput(inv, inv.args[1:], "subject")
		if err != nil {
			return err
		}
		if r.response, err = encodeData(cd, input, source); err != nil {
			return err
		}
	}
	r.argv = inv.argv
	r.out = &lineWriter{stdout: inv.stdout, stderr: inv.stderr}
	r.printer = &msgPrinter{out: r.out, cd: cd, asJSON: r.asJSON}
	r.done = make(chan struct{})

	// The server refuses a subscription after the fact, as an error of
	// the connection. One that comes before any request is that (a
	// refused response comes after one): it ends the command.
	sctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	c, err := r.conn.dial(ctx, cmd, watchConn(r.out, &r.conn, func(err error) bool {
		if r.n.Load() > 0 {
			return false
		}
		stop(err)
		return true
	})...)
	if err != nil {
		return err
	}
	defer c.Close()
	r.maxPayload = c.MaxPayload()
	var (
		wg   sync.WaitGroup
		slot = make(chan struct{}, r.concurrency)
	)
	sub, err := c.QueueSubscribe(subject, r.queue, func(m *ipc.Msg) {
		m.Context() // from now on, the requester giving up ends it
		n := int(r.n.Add(1))
		// One at a time in order, or -c at once: the subscription's
		// queue holds the rest, bounded, while every slot is taken.
		select {
		case slot <- struct{}{}:
		case <-sctx.Done():
			return
		}
		wg.Go(func() {
			defer func() { <-slot }()
			r.answer(n, m)
		})
		if r.concurrency == 1 {
			wg.Wait()
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	if r.count > 0 {
		if err := sub.AutoUnsubscribe(r.count); err != nil {
			return err
		}
	}
	if err := c.Flush(ctx); err != nil {
		return exitQuietly(ctx, fmt.Errorf("subscribe to %s: %w", subject, err))
	}
	group := ""
	if r.queue != "" {
		group = fmt.Sprintf(" in queue group %s", r.queue)
	}
	r.out.stderrf("procxy: answering requests to %s%s on %s\n", subject, group, r.conn.where())
	select {
	case <-sctx.Done():
		// At once: the requests' contexts end, so running commands get
		// SIGTERM, and the server tells their requesters.
		c.Close()
		wg.Wait()
		if cause := context.Cause(sctx); errors.Is(cause, ipc.ErrPermission) {
			return fmt.Errorf("subscribe to %s: %w", subject, cause)
		}
		return nil
	case <-r.done:
		// The answers are on their way: drain flushes them.
		dctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		c.Drain(dctx)
	}
	wg.Wait()
	return nil
}

// answer answers request number n and counts it.
func (r *replyFlags) answer(n int, m *ipc.Msg) {
	if !r.quiet {
		r.printer.print(n, m)
	}
	switch {
	case m.Reply == "":
		r.out.stderrf("procxy: message %d on %s expects no reply (a publish, not a request)\n", n, m.Subject)
	case m.Streaming():
		if err := r.stream(m); err != nil && m.Context().Err() == nil {
			r.out.stderrf("procxy: answer request %d on %s: %v\n", n, m.Subject, err)
		}
	default:
		resp, err := r.respond(m)
		switch {
		case err != nil && m.Context().Err() != nil:
			// The requester gave up: nobody waits for an answer.
		case err != nil:
			if rerr := m.RespondError(err); rerr != nil {
				r.out.stderrf("procxy: answer request %d on %s: %v\n", n, m.Subject, rerr)
			}
		default:
			if rerr := m.RespondMsg(resp); rerr != nil {
				r.out.stderrf("procxy: answer request %d on %s: %v\n", n, m.Subject, rerr)
			}
		}
	}
	if a := r.answered.Add(1); r.count > 0 && a >= int64(r.count) {
		r.doneOnce.Do(func() { close(r.done) })
	}
}

// respond makes the response to m.
func (r *replyFlags) respond(m *ipc.Msg) (*ipc.Msg, error) {
	resp := &ipc.Msg{}
	switch {
	case r.argv != nil:
		out, err := r.runCommand(m)
		if err != nil {
			return nil, err
		}
		resp.Data = out
	case r.response != nil:
		resp.Data = r.response
	default: // echo
		resp.Data = m.Data
		for k, vs := range m.Header {
			for _, v := range vs {
				if resp.Header == nil {
					resp.Header = ipc.Header{}
				}
				resp.Header.Add(k, v)
			}
		}
	}
	for k, vs := range r.header.h {
		if resp.Header == nil {
			resp.Header = ipc.Header{}
		}
		resp.Header[k] = append([]string(nil), vs...)
	}
	return resp, nil
}

// stream answers a streamed request: with a command, a chunk per line of
// its output as it writes it; otherwise with the response, or the echo,
// as one chunk.
func (r *replyFlags) stream(m *ipc.Msg) error {
	w, err := m.Stream()
	if err != nil {
		return err
	}
	if r.argv == nil {
		resp, _ := r.respond(m) // only a command fails
		if err := w.SendMsg(resp); err != nil {
			w.Close(nil)
			return err
		}
		return w.Close(nil)
	}
	err = r.streamCommand(m, w)
	if m.Context().Err() != nil {
		w.Close(nil)
		return nil // the requester gave up: nobody listens
	}
	return w.Close(err) // nil ends the stream, an error reaches the requester
}

// commandOptions are the options of a reply command for request m. Its
// context is the request's: the command gets SIGTERM, and a second later
// SIGKILL, with its process group, when the requester gives up.
func (r *replyFlags) commandOptions(m *ipc.Msg) childproc.Options {
	o := childproc.Options{
		Env:       append(os.Environ(), "PROCXY_IPC_SUBJECT="+m.Subject, "PROCXY_IPC_REPLY="+m.Reply),
		KillGroup: true,
		StopGrace: time.Second,
	}
	dieWithParent(&o)
	return o
}

// runCommand runs the reply command for m and returns its stdout.
func (r *replyFlags) runCommand(m *ipc.Msg) ([]byte, error) {
	o := r.commandOptions(m)
	o.Input, o.MaxBuffer = m.Data, r.maxPayload
	stdout, stderr, err := childproc.ExecFile(m.Context(), r.argv[0], r.argv[1:], o)
	if err != nil {
		return nil, r.commandError(m.Context(), err, stderr)
	}
	return stdout, nil
}

// streamCommand runs the reply command for m and sends each line of its
// output as a chunk of w as soon as it is written. A line longer than
// maxLine goes in pieces. When the requester has no credit left, Send
// waits, and the command waits on its full pipe: flow control reaches it.
func (r *replyFlags) streamCommand(m *ipc.Msg, w *ipc.StreamWriter) error {
	child, err := childproc.Spawn(m.Context(), r.argv[0], r.argv[1:], r.commandOptions(m))
	if err != nil {
		return r.commandError(m.Context(), err, nil)
	}
	var (
		wg     sync.WaitGroup
		errOut tailBuffer
	)
	stdin, stdout, stderr := child.Stdin(), child.Stdout(), child.Stderr()
	wg.Go(func() {
		stdin.Write(m.Data) // fails when the command does not read it all: it is done with it
		stdin.Close()
	})
	wg.Go(func() { io.Copy(&errOut, stderr) })
	br := bufio.NewReaderSize(stdout, min(r.maxPayload, maxLine))
	var sendErr error
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 && sendErr == nil {
			if sendErr = w.Send(bytes.Clone(line)); sendErr != nil {
				child.KillGroup(syscall.SIGTERM) // nobody takes its output
			}
		}
		if err != nil && err != bufio.ErrBufferFull {
			break // EOF, or the pipe closed
		}
	}
	stdout.Close()
	wg.Wait()
	werr := child.Wait(context.Background()) // it has exited: its pipes ended
	if sendErr != nil {
		return sendErr
	}
	if werr != nil {
		return r.commandError(m.Context(), werr, errOut.b)
	}
	return nil
}

// maxLine bounds a chunk of a streamed command's output.
const maxLine = 64 << 10

// commandError is the error the requester gets for a failed command.
func (r *replyFlags) commandError(ctx context.Context, err error, stderr []byte) error {
	name := filepath.Base(r.argv[0])
	var ee *childproc.ExitError
	var se *childproc.SpawnError
	switch {
	case errors.As(err, &se):
		return &ipc.RemoteError{Code: "spawn_failed", Message: fmt.Sprintf("%s could not start: %v", shellJoin(r.argv), se.Err)}
	case errors.Is(err, childproc.ErrMaxBuffer):
		return &ipc.RemoteError{Code: "too_large", Message: fmt.Sprintf("%s wrote more than the maximum payload, %d bytes", name, r.maxPayload)}
	case errors.As(err, &ee) && ctx.Err() == nil:
		msg := fmt.Sprintf("%s exited with status %d", name, ee.Code)
		code := fmt.Sprintf("exit_%d", ee.Code)
		if ee.Code < 0 {
			msg, code = fmt.Sprintf("%s was killed by signal %v", name, ee.Signal), "signal"
		}
		if line := lastLine(stderr); line != "" {
			msg += ": " + line
		}
		return &ipc.RemoteError{Code: code, Message: msg}
	}
	return err
}

// tailBuffer keeps the last 4 KiB written to it: the end of a command's
// stderr, for its error.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	const keep = 4 << 10
	t.b = append(t.b, p...)
	if len(t.b) > keep {
		t.b = append(t.b[:0], t.b[len(t.b)-keep:]...)
	}
	return len(p), nil
}

// lastLine is the last non-empty line of b.
func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
