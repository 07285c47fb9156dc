package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync"
	"time"

	"github.com/procxy/procxy/internal/backoff"
	"github.com/procxy/procxy/ipc"
)

const serverFlagUsage = "the ipc server's `ADDR`: a socket name, a path, tcp://host:port or tls://host:port ($PROCXY_IPC_SERVER sets the default)"

func ipcPubCommand() *command {
	return &command{
		name:    "ipc pub",
		summary: "publish a message",
		usage: `usage: procxy ipc pub [flags] SUBJECT [DATA]

Pub publishes DATA to SUBJECT: the argument, "@FILE" for a file's content,
"@-" or, without DATA, standard input (when it is a terminal, the message
is empty). -H adds headers. With
-count N it publishes N messages, -interval apart; in the data and header
values, {{Count}} becomes the message's number (1…N) and {{Time}} the time
(RFC 3339). Delivery is at most once: pub returns when the server has the
messages, and errors the server reports (a publish its permissions deny)
fail it. With -sync it waits until the server has routed each message, and
fails with exit status 6 when nobody subscribes (over NATS, which does not
say, after a flush).

	procxy ipc pub greet.joe hello
	procxy ipc pub -H Trace-Id:42 -count 3 orders.new '{"n": {{Count}}}'
	procxy ipc pub -codec msgpack prices.eur '{"bid": 1.08}' # for an ipc.Topic
`,
		setup: func(fs *flag.FlagSet) runFunc {
			p := &pubFlags{}
			p.conn.register(fs, defaultServer(), serverFlagUsage)
			fs.Var(&p.header, "H", "add a header `KEY:VALUE` (repeatable)")
			fs.IntVar(&p.count, "count", 1, "publish `N` messages")
			fs.DurationVar(&p.interval, "interval", 0, "wait `duration` between messages")
			fs.StringVar(&p.reply, "reply", "", "reply `subject` of the messages, for responders to answer to")
			fs.BoolVar(&p.sync, "sync", false, "wait until the server has routed each message; fail if nobody subscribes")
			fs.StringVar(&p.codec, "codec", "raw", ipcCodecUsage)
			fs.BoolVar(&p.verbose, "v", false, "verbose: say what was published")
			return p.run
		},
	}
}

type pubFlags struct {
	conn     connFlags
	header   headerFlags
	count    int
	interval time.Duration
	reply    string
	sync     bool
	codec    string
	verbose  bool
}

func (p *pubFlags) run(ctx context.Context, inv *invocation) error {
	const cmd = "ipc pub"
	if len(inv.args) == 0 {
		return usageErrorf("%s: no subject given", cmd)
	}
	subject := inv.args[0]
	if err := checkSubjectArg(cmd, subject, false); err != nil {
		return err
	}
	if p.reply != "" {
		if err := checkSubjectArg(cmd, p.reply, false); err != nil {
			return err
		}
	}
	switch {
	case p.count < 1:
		return usageErrorf("%s: -count must be at least 1", cmd)
	case p.interval < 0:
		return usageErrorf("%s: -interval must not be negative", cmd)
	}
	cd, err := ipcCodec(cmd, p.codec)
	if err != nil {
		return err
	}
	input, source, err := readData(inv, inv.args[1:])
	if err != nil {
		return err
	}
	first, err := encodeData(cd, expand(input, 1), source) // bad input fails before connecting
	if err != nil {
		return err
	}
	out := &lineWriter{stdout: inv.stdout, stderr: inv.stderr}
	var (
		mu      sync.Mutex
		refused error
	)
	c, err := p.conn.dial(ctx, cmd, ipc.OnError(func(err error) {
		mu.Lock()
		defer mu.Unlock()
		if refused == nil {
			refused = err
		}
	}))
	if err != nil {
		return err
	}
	defer c.Close()
	for n := 1; n <= p.count; n++ {
		data := first
		if n > 1 {
			if data, err = encodeData(cd, expand(input, n), source); err != nil {
				return err
			}
		}
		m := &ipc.Msg{Subject: subject, Reply: p.reply, Data: data}
		if p.header.h != nil {
			m.Header = ipc.Header{}
			for k, vs := range p.header.h {
				for _, v := range vs {
					m.Header.Add(k, string(expand([]byte(v), n)))
				}
			}
		}
		if p.sync {
			err = c.PublishSync(ctx, m)
		} else {
			err = c.PublishMsg(m)
		}
		if err != nil {
			return p.failed(subject, n, err)
		}
		if p.verbose {
			out.stderrf("procxy: published %d bytes to %s\n", len(data), subject)
		}
		if n < p.count && p.interval > 0 {
			if err := backoff.Sleep(ctx, p.interval); err != nil {
				return err
			}
		}
	}
	// The server has every message once a flush returns, and has said
	// what it refused before it answers the flush; Close runs the error
	// callbacks queued by then.
	if err := c.Flush(ctx); err != nil {
		return p.failed(subject, p.count, err)
	}
	c.Close()
	mu.Lock()
	defer mu.Unlock()
	if refused != nil {
		return fmt.Errorf("the server refused a publish to %s: %w", subject, refused)
	}
	return nil
}

func (p *pubFlags) failed(subject string, n int, err error) error {
	what := "publish to " + subject
	if p.count > 1 {
		what = fmt.Sprintf("publish %d of %d to %s", n, p.count, subject)
	}
	switch {
	case errors.Is(err, ipc.ErrNoSubscribers):
		return &callError{msg: fmt.Sprintf("%s: no subscribers on %s", what, p.conn.where()), err: err}
	case errors.Is(err, ipc.ErrMaxPayload), errors.Is(err, ipc.ErrBadHeader):
		return &UsageError{Err: fmt.Errorf("%s: %w", what, err)}
	}
	return fmt.Errorf("%s: %w", what, err)
}

func ipcSubCommand() *command {
	return &command{
		name:    "ipc sub",
		summary: "print the messages on a subject as they arrive",
		usage: `usage: procxy ipc sub [flags] SUBJECT

Sub subscribes to SUBJECT ("*" matches one token, ">" the rest) and prints
each message as it arrives, until Ctrl-C or -count messages: its number,
subject and reply subject, its headers, and its data. With -queue it joins
a queue group: each message goes to one member of the group. It says on
stderr when the server has the subscription, and when the connection
breaks and comes back (it subscribes again by itself).

	[#1] Received on "greet.joe"
	Trace-Id: 42

	hello

-raw prints the data alone, a message a line; -json prints one JSON object
a line: {"subject": …, "reply": …, "header": {KEY: [VALUE…]}, "data": …},
where raw data is a string, or {"$bytes": "<base64>"} when it is not
UTF-8 text. -codec msgpack or json decodes the data first.

	procxy ipc sub 'orders.>'
	procxy ipc sub -queue workers -count 1 -raw jobs.new
`,
		setup: func(fs *flag.FlagSet) runFunc {
			s := &subFlags{}
			s.conn.register(fs, defaultServer(), serverFlagUsage)
			fs.StringVar(&s.queue, "queue", "", "join queue `group`: each message goes to one member")
			fs.IntVar(&s.count, "count", 0, "exit after `N` messages (default: until Ctrl-C)")
			fs.BoolVar(&s.asJSON, "json", false, "print each message as a line of JSON")
			fs.BoolVar(&s.raw, "raw", false, "print only the data of each message, a message a line")
			fs.BoolVar(&s.stamp, "timestamp", false, "print the time each message arrived")
			fs.StringVar(&s.codec, "codec", "raw", ipcCodecUsage)
			return s.run
		},
	}
}

type subFlags struct {
	conn   connFlags
	queue  string
	count  int
	asJSON bool
	raw    bool
	stamp  bool
	codec  string
}

func (s *subFlags) run(ctx context.Context, inv *invocation) error {
	const cmd = "ipc sub"
	switch {
	case len(inv.args) == 0:
		return usageErrorf("%s: no subject given", cmd)
	case len(inv.args) > 1:
		return usageErrorf("%s: one subject only, got %q", cmd, inv.args)
	case s.count < 0:
		return usageErrorf("%s: -count must not be negative", cmd)
	case s.asJSON && s.raw:
		return usageErrorf("%s: -json and -raw: give one", cmd)
	}
	subject := inv.args[0]
	if err := checkSubjectArg(cmd, subject, true); err != nil {
		return err
	}
	if s.queue != "" && !ipc.ValidLiteral(s.queue) {
		return usageErrorf("%s: invalid queue group %q: a name without spaces or wildcards", cmd, s.queue)
	}
	cd, err := ipcCodec(cmd, s.codec)
	if err != nil {
		return err
	}
	out := &lineWriter{stdout: inv.stdout, stderr: inv.stderr}
	// The server refuses a subscription after the fact, as an error of
	// the connection: sub has nothing else to do, so any refusal ends it.
	sctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	c, err := s.conn.dial(ctx, cmd, watchConn(out, &s.conn, func(err error) bool { stop(err); return true })...)
	if err != nil {
		return err
	}
	defer c.Close()
	sub, err := c.QueueSubscribe(subject, s.queue, nil)
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	if s.count > 0 {
		// The server stops sending after count: a queue group's other
		// members get the rest.
		if err := sub.AutoUnsubscribe(s.count); err != nil {
			return err
		}
	}
	if err := c.Flush(ctx); err != nil {
		return exitQuietly(ctx, fmt.Errorf("subscribe to %s: %w", subject, err))
	}
	group := ""
	if s.queue != "" {
		group = fmt.Sprintf(" in queue group %s", s.queue)
	}
	out.stderrf("procxy: subscribed to %s%s on %s\n", subject, group, s.conn.where())
	p := &msgPrinter{out: out, cd: cd, asJSON: s.asJSON, raw: s.raw, stamp: s.stamp}
	for n := 1; s.count == 0 || n <= s.count; n++ {
		m, err := sub.Next(sctx)
		if cause := context.Cause(sctx); err != nil && errors.Is(cause, ipc.ErrPermission) {
			return fmt.Errorf("subscribe to %s: %w", subject, cause)
		}
		if err != nil {
			if errors.Is(err, ipc.ErrClosed) {
				return fmt.Errorf("the subscription to %s ended: the connection to %s closed", subject, s.conn.where())
			}
			return exitQuietly(ctx, err)
		}
		if err := p.print(n, m); err != nil {
			return err
		}
	}
	return nil
}

// exitQuietly is the end of a command that runs until Ctrl-C (serve, sub,
// reply): nil once ctx is done, err otherwise.
func exitQuietly(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
