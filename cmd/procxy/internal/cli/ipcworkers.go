package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/procxy/procxy"
)

func ipcWorkersCommand() *command {
	return &command{
		name:    "ipc workers",
		summary: "list the procxy workers on an ipc server or NATS",
		usage: `usage: procxy ipc workers [flags]

Workers lists the processes that serve procxy types and functions on the
bus (procxy.Serve): each one's id, host, pid, version, calls in flight and
served, how long it has served, and what it serves. It asks every worker
and prints the answers that arrive within -wait. With -type KEY -min N it
waits instead until at least N workers serve KEY (a type's key or a Func's
name), up to -wait, and fails with exit status 5 if they do not appear.
-json prints the list as JSON, with every type's methods and signatures.

	procxy ipc workers -nats nats://bus:4222
	procxy ipc workers -type example.Thumbnailer -min 3 -wait 30s
`,
		setup: func(fs *flag.FlagSet) runFunc {
			w := &workersFlags{}
			w.conn.register(fs, defaultServer(), serverFlagUsage)
			fs.DurationVar(&w.wait, "wait", 500*time.Millisecond, "collect answers for `duration` (with -min: wait up to it)")
			fs.StringVar(&w.typ, "type", "", "with -min: the type `key` or Func name to wait for")
			fs.IntVar(&w.min, "min", 0, "wait until at least `N` workers serve -type")
			fs.BoolVar(&w.asJSON, "json", false, "print the workers as JSON")
			return w.run
		},
	}
}

type workersFlags struct {
	conn   connFlags
	wait   time.Duration
	typ    string
	min    int
	asJSON bool
}

func (w *workersFlags) run(ctx context.Context, inv *invocation) error {
	const cmd = "ipc workers"
	switch {
	case len(inv.args) > 0:
		return usageErrorf("%s: unexpected argument %q", cmd, inv.args[0])
	case w.wait <= 0:
		return usageErrorf("%s: -wait must be positive", cmd)
	case (w.min > 0) != (w.typ != ""):
		return usageErrorf("%s: -type and -min go together", cmd)
	}
	c, err := w.conn.dial(ctx, cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	wctx, cancel := context.WithTimeout(ctx, w.wait)
	defer cancel()
	var ws []procxy.WorkerInfo
	if w.min > 0 {
		ws, err = procxy.WaitWorkers(wctx, c, w.typ, w.min) // a deadline error: exit status 5
	} else {
		ws, err = procxy.Workers(wctx, c)
	}
	if err != nil {
		return err
	}
	if w.asJSON {
		if ws == nil {
			ws = []procxy.WorkerInfo{}
		}
		b, err := json.MarshalIndent(ws, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintf(inv.stdout, "%s\n", b)
		return nil
	}
	if len(ws) == 0 {
		fmt.Fprintf(inv.stderr, "procxy: no worker answered on %s within %v\n", w.conn.where(), w.wait)
		return nil
	}
	tw := tabwriter.NewWriter(inv.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tHOST\tPID\tVERSION\tIN FLIGHT\tSERVED\tUP\tSERVES")
	for _, x := range ws {
		var serves []string
		for _, t := range x.Types {
			serves = append(serves, fmt.Sprintf("%s (%s)", t.Key, plural(len(t.Methods), "method")))
		}
		for _, f := range x.Funcs {
			serves = append(serves, "func "+f.Name)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%v\t%s\n", x.ID, x.Host, x.PID, orDash(x.Version),
			x.InFlight, x.Served, time.Since(x.Started).Round(time.Second), strings.Join(serves, ", "))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// plural is "1 method", "2 methods".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
