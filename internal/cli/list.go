package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/rpc"
)

func listCommand() *command {
	return &command{
		name:    "list",
		summary: "list a worker's methods and events",
		worker:  true,
		usage: `usage: procxy list [flags] -- WORKER COMMAND [ARGS...]

List starts the worker (any program that speaks Procwire v2: a Go worker,
node worker.mjs, ...), reads the methods and events it announces in its
$init line, prints them with each method's kind (result, ack, stream or
none), and stops it.

	procxy list -- ./echoworker
	procxy list -json -- node worker.mjs
`,
		setup: func(fs *flag.FlagSet) runFunc {
			var wf workerFlags
			wf.register(fs)
			asJSON := fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, inv *invocation) error {
				if len(inv.args) > 0 {
					return usageErrorf("list: unexpected argument %q before --", inv.args[0])
				}
				return withWorker(ctx, inv, &wf, func(w *worker) error {
					if *asJSON {
						return writeJSON(inv.stdout, listJSON(w, false))
					}
					return printList(inv.stdout, w.schema)
				})
			}
		},
	}
}

func describeCommand() *command {
	return &command{
		name:    "describe",
		summary: "describe a worker, or one of its methods or events",
		worker:  true,
		usage: `usage: procxy describe [flags] [NAME] -- WORKER COMMAND [ARGS...]

Describe starts the worker and prints what its $init line says: for each
method its id, kind, the worker's own timeout and the procxy command that
calls it; for each event its id; and the worker's process id and how long
it took to be ready. With NAME, it describes that method or event only.
Procwire announces neither argument types nor codecs: a method's codec is
msgpack unless its documentation says otherwise.

	procxy describe -- ./echoworker
	procxy describe count -- node worker.mjs
`,
		setup: func(fs *flag.FlagSet) runFunc {
			var wf workerFlags
			wf.register(fs)
			asJSON := fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, inv *invocation) error {
				if len(inv.args) > 1 {
					return usageErrorf("describe: one name at most, got %q", inv.args)
				}
				return withWorker(ctx, inv, &wf, func(w *worker) error {
					if len(inv.args) == 1 {
						return describeOne(inv, w, inv.args[0], *asJSON)
					}
					if *asJSON {
						return writeJSON(inv.stdout, listJSON(w, true))
					}
					return printDescribe(inv.stdout, w)
				})
			}
		},
	}
}

// withWorker starts the worker, runs fn and stops the worker.
func withWorker(ctx context.Context, inv *invocation, wf *workerFlags, fn func(*worker) error) error {
	w, err := startWorker(ctx, inv, wf)
	if err != nil {
		return err
	}
	err = fn(w)
	var ee *host.ExitError
	if err == nil && w.m.State() == host.StateFailed && errors.As(w.m.Err(), &ee) {
		fmt.Fprintf(inv.stderr, "procxy: note: the worker (pid %d) exited with status %d before procxy stopped it\n", ee.PID, ee.Code)
	}
	if serr := w.stop(); err == nil && serr != nil {
		err = fmt.Errorf("stop the worker: %w", serr)
	}
	return err
}

func printList(out io.Writer, sc host.InitSchema) error {
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "METHOD\tKIND")
	for _, am := range sc.Methods {
		kind := am.Kind.String()
		if am.Problem != "" {
			kind = "unusable: " + am.Problem
		}
		fmt.Fprintf(tw, "%s\t%s\n", am.Name, kind)
	}
	if err := tw.Flush(); err != nil || len(sc.Events) == 0 {
		return err
	}
	fmt.Fprintln(tw, "\nEVENT")
	for _, ev := range sc.Events {
		if ev.Problem != "" {
			fmt.Fprintf(tw, "%s\tunusable: %s\n", ev.Name, ev.Problem)
		} else {
			fmt.Fprintln(tw, ev.Name)
		}
	}
	return tw.Flush()
}

func printDescribe(out io.Writer, w *worker) error {
	fmt.Fprintf(out, "worker %s: pid %d, ready in %s, %d methods, %d events\n\n",
		shellJoin(w.argv), w.pid, round(w.ready), len(w.schema.Methods), len(w.schema.Events))
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "METHOD\tID\tKIND\tTIMEOUT\tCALL WITH")
	for _, am := range w.schema.Methods {
		if am.Problem != "" {
			fmt.Fprintf(tw, "%s\t%d\t\t\tunusable: the worker %s\n", am.Name, am.ID, am.Problem)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%v\t%s\t%s\n", am.Name, am.ID, am.Kind, timeoutText(am), callWith(am))
	}
	if err := tw.Flush(); err != nil || len(w.schema.Events) == 0 {
		return err
	}
	fmt.Fprintln(tw, "\nEVENT\tID")
	for _, ev := range w.schema.Events {
		if ev.Problem != "" {
			fmt.Fprintf(tw, "%s\t%d\tunusable: the worker %s\n", ev.Name, ev.ID, ev.Problem)
		} else {
			fmt.Fprintf(tw, "%s\t%d\n", ev.Name, ev.ID)
		}
	}
	return tw.Flush()
}

func describeOne(inv *invocation, w *worker, name string, asJSON bool) error {
	for _, am := range w.schema.Methods {
		if am.Name == name {
			if asJSON {
				return writeJSON(inv.stdout, map[string]any{"method": methodJSON(am)})
			}
			fmt.Fprintf(inv.stdout, "method %s\n  id       %d\n", am.Name, am.ID)
			if am.Problem != "" {
				_, err := fmt.Fprintf(inv.stdout, "  problem  the worker %s\n", am.Problem)
				return err
			}
			fmt.Fprintf(inv.stdout, "  kind     %v: %s\n", am.Kind, kindText(am.Kind))
			fmt.Fprintf(inv.stdout, "  timeout  %s\n", timeoutText(am))
			_, err := fmt.Fprintf(inv.stdout, "  call     %s INPUT -- %s\n", callWith(am), shellJoin(w.argv))
			return err
		}
	}
	for _, ev := range w.schema.Events {
		if ev.Name == name {
			if asJSON {
				return writeJSON(inv.stdout, map[string]any{"event": eventJSON(ev)})
			}
			fmt.Fprintf(inv.stdout, "event %s\n  id       %d\n", ev.Name, ev.ID)
			if ev.Problem != "" {
				fmt.Fprintf(inv.stdout, "  problem  the worker %s\n", ev.Problem)
			}
			_, err := fmt.Fprintf(inv.stdout, "  shown    by procxy call and procxy stream as it arrives\n")
			return err
		}
	}
	var names []string
	for _, am := range w.schema.Methods {
		names = append(names, am.Name)
	}
	for _, ev := range w.schema.Events {
		names = append(names, ev.Name)
	}
	return usageErrorf("describe: the worker has no method or event %q%s", name, didYouMean(name, names))
}

func kindText(k rpc.Kind) string {
	switch k {
	case rpc.KindResult:
		return "answers once with a result"
	case rpc.KindAck:
		return "answers once with an acknowledgement, which may carry data"
	case rpc.KindStream:
		return "answers with a stream of chunks, then an end"
	}
	return "fire-and-forget: nothing comes back"
}

func timeoutText(am host.AnnouncedMethod) string {
	switch {
	case am.Kind == rpc.KindStream || am.Kind == rpc.KindNone:
		return "-"
	case am.Timeout > 0:
		return am.Timeout.String()
	}
	return "none"
}

func callWith(am host.AnnouncedMethod) string {
	if am.Kind == rpc.KindStream {
		return "procxy stream " + am.Name
	}
	return "procxy call " + am.Name
}

type methodInfo struct {
	Name      string   `json:"name"`
	ID        uint16   `json:"id"`
	Kind      string   `json:"kind,omitempty"`
	TimeoutMS *float64 `json:"timeout_ms,omitempty"`
	Problem   string   `json:"problem,omitempty"`
}

type eventInfo struct {
	Name    string `json:"name"`
	ID      uint16 `json:"id"`
	Problem string `json:"problem,omitempty"`
}

func methodJSON(am host.AnnouncedMethod) methodInfo {
	mi := methodInfo{Name: am.Name, ID: am.ID, Problem: am.Problem}
	if am.Problem == "" {
		mi.Kind = am.Kind.String()
	}
	if am.Timeout > 0 {
		ms := float64(am.Timeout) / float64(time.Millisecond)
		mi.TimeoutMS = &ms
	}
	return mi
}

func eventJSON(ev host.AnnouncedEvent) eventInfo {
	return eventInfo{Name: ev.Name, ID: ev.ID, Problem: ev.Problem}
}

type schemaInfo struct {
	Worker  *workerInfo  `json:"worker,omitempty"`
	Methods []methodInfo `json:"methods"`
	Events  []eventInfo  `json:"events"`
}

type workerInfo struct {
	Command []string `json:"command"`
	PID     int      `json:"pid"`
	ReadyMS float64  `json:"ready_ms"`
}

func listJSON(w *worker, withWorker bool) schemaInfo {
	si := schemaInfo{Methods: []methodInfo{}, Events: []eventInfo{}}
	if withWorker {
		si.Worker = &workerInfo{Command: w.argv, PID: w.pid, ReadyMS: float64(w.ready) / float64(time.Millisecond)}
	}
	for _, am := range w.schema.Methods {
		mi := methodJSON(am)
		if !withWorker {
			mi.TimeoutMS = nil
		}
		si.Methods = append(si.Methods, mi)
	}
	for _, ev := range w.schema.Events {
		si.Events = append(si.Events, eventJSON(ev))
	}
	return si
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}
