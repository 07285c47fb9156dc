// Command procxy calls, lists and load-tests Procwire workers, writes typed
// stubs for procxy's object proxy (procxy gen) and gives a short tour of
// the library (procxy demo). Run "procxy help" for usage.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/internal/cli"
)

func main() {
	procxy.Main() // the demo's children are this binary, re-run: they serve here
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // a second Ctrl-C kills procxy at once
	err := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "procxy:", err)
		os.Exit(cli.ExitCode(err))
	}
}
