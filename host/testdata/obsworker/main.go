// Command obsworker is a Procwire worker with an Observer that prints each
// call it serves on stderr, for the host package's observer test.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/procxy/procxy/observe"
	"github.com/procxy/procxy/worker"
)

type stderrObserver struct{}

func (stderrObserver) CallStart(ctx context.Context, _ *observe.Call) context.Context { return ctx }
func (stderrObserver) CallEnd(_ context.Context, c *observe.Call) {
	tp := ""
	if c.Carrier != nil {
		tp = c.Carrier.Get("traceparent")
	}
	fmt.Fprintf(os.Stderr, "observed side=%v kind=%v service=%s method=%s in=%d out=%d err=%v traceparent=%s\n",
		c.Side, c.Kind, c.Service, c.Method, c.BytesIn, c.BytesOut, c.Err, tp)
}
func (stderrObserver) Child(observe.ChildEvent) {}

func main() {
	w := worker.New(worker.Options{Observer: stderrObserver{}})
	worker.Result(w, "echo", func(_ context.Context, in string) (string, error) { return in, nil })
	if err := w.Run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "obsworker:", err)
		os.Exit(1)
	}
}
