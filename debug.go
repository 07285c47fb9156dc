package procxy

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/procxy/procxy/internal/delve"
)

// Delve says how [Debug] runs a child under Delve's headless debugger:
// which dlv binary (Path; empty means $PROCXY_DLV, else "dlv" in PATH),
// the address its API listens on (Listen; empty means a free port on
// 127.0.0.1) and whether the child waits before main for a client to
// continue it (Wait). The zero value runs the child at once under "dlv".
type Delve = delve.Config

// Environment variables that change how children start, so that a program
// can be debugged without changing its code.
const (
	// EnvDebug names the children to start under dlv: a comma-separated
	// list of type keys (main.Counter, as in errors and logs), Func names
	// or host module names, each optionally followed by ":wait"; "*" names
	// all. PROCXY_DEBUG=main.Counter:wait is Debug(Delve{Wait: true}) for
	// every New[Counter].
	EnvDebug = delve.EnvDebug
	// EnvAttach is a socket path (or "key=path,key2=path2") that New uses
	// instead of starting a child: Attach without changing code.
	EnvAttach = "PROCXY_ATTACH"
	// EnvListen makes Main serve one parent on a socket path instead of
	// returning: the child side of Attach, for a child started by hand.
	EnvListen = "PROCXY_LISTEN"
)

// Debug starts the child under Delve's headless debugger, `dlv exec
// --headless --accept-multiclient` (plus --continue unless d.Wait), and
// logs the address of dlv's API at Info level (attribute "dlv") on the
// proxy's Logger, so that an IDE or `dlv connect ADDR` can attach to it.
// The child still gets its connection to the parent (dlv passes it on).
//
// A child under a debugger may stop at a breakpoint for as long as its
// developer likes, so Debug lifts the call Timeout and stretches
// StartTimeout to at least 10 minutes. When the child's connection ends
// (Close, or the child exited), the parent tells dlv to kill its target and
// quit. The child must be built with symbols (the default; not -ldflags=-s
// -w); build with -gcflags=all=-N -l for stepping without optimizations.
func Debug(d Delve) Option {
	return optionFunc(func(o *options) { o.debug = &d })
}

// fromEnv applies PROCXY_DEBUG and PROCXY_ATTACH for the child named
// name, and what Debug implies.
func (o *options) fromEnv(name string) {
	if o.debug == nil {
		if d, ok := delve.FromEnv(name); ok {
			o.debug = &d
		}
	}
	if o.attach == "" {
		o.attach = attachFromEnv(os.Getenv(EnvAttach), name)
	}
	if o.debug != nil {
		o.callTimeout = -1
		if o.startTimeout > 0 {
			o.startTimeout = max(o.startTimeout, delve.StartTimeout)
		}
	}
}

// sawDebugger records and logs dlv's address when line announces it.
func (c *child) sawDebugger(line string, log *slog.Logger) bool {
	addr, ok := delve.Address(line)
	if !ok || c.dlvAddr.Load() != nil {
		return false
	}
	c.dlvAddr.Store(&addr)
	log.Info("procxy: child running under dlv; connect with dlv connect "+addr, "dlv", addr)
	return true
}

// stopDebuggerAfter tells the child's dlv to quit once the connection
// to its target has ended, which does not make a headless dlv quit.
func (c *child) stopDebuggerAfter(done <-chan struct{}) {
	c.wg.Go(func() {
		select {
		case <-c.sup.Proc().Exited():
			return
		case <-done:
		}
		addr := c.dlvAddr.Load()
		if addr == nil {
			return // dlv never got as far as listening; the grace kill ends it
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		delve.Stop(ctx, *addr) // on failure the grace period ends in a kill
	})
}
