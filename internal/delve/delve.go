package delve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"net/rpc/jsonrpc"
	"os"
	"strings"
	"time"
)

// Environment variables.
const (
	// EnvDebug names the children to start under dlv, without changing
	// code: a comma-separated list of names (an object proxy's type key,
	// such as main.Counter, a Func's name, or a host module's name), each
	// optionally followed by ":wait" to stop the child before main until a
	// client continues it. "*" matches every child.
	EnvDebug = "PROCXY_DEBUG"
	// EnvDlv is the dlv binary to use when Config.Path is empty; unset
	// means "dlv" looked up in PATH.
	EnvDlv = "PROCXY_DLV"
)

// Config says how to run a child under Delve. The zero value runs it
// under "dlv" from PATH, listening on a free loopback port, running at once.
type Config struct {
	// Path is the dlv binary; empty means $PROCXY_DLV, else "dlv" in PATH.
	Path string
	// Listen is the address dlv's API listens on; empty means
	// 127.0.0.1:0, a free loopback port (dlv's API is not authenticated:
	// keep it on loopback).
	Listen string
	// Wait stops the child before its main function until a debugger
	// client continues it (dlv exec without --continue); the parent waits
	// for it. Without Wait the child runs at once and breakpoints can be
	// set while it runs.
	Wait bool
}

// StartTimeout is the least time a parent waits for a child that runs
// under dlv to start: long enough to attach a client and continue it.
const StartTimeout = 10 * time.Minute

// FromEnv reports whether $PROCXY_DEBUG names one of names (empty names
// are skipped), and with which Config.
func FromEnv(names ...string) (Config, bool) {
	return parse(os.Getenv(EnvDebug), names)
}

func parse(spec string, names []string) (Config, bool) {
	for item := range strings.SplitSeq(spec, ",") {
		item = strings.TrimSpace(item)
		name, opt, _ := strings.Cut(item, ":")
		if name == "" {
			continue
		}
		for _, n := range names {
			if n != "" && (name == n || name == "*") {
				return Config{Wait: opt == "wait"}, true
			}
		}
	}
	return Config{}, false
}

// Command returns the program and arguments that run exe with args under
// a headless dlv.
func (c Config) Command(exe string, args []string) (string, []string) {
	dlv := c.Path
	if dlv == "" {
		dlv = os.Getenv(EnvDlv)
	}
	if dlv == "" {
		dlv = "dlv"
	}
	listen := c.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	argv := []string{"exec", "--headless", "--api-version=2", "--accept-multiclient", "--listen=" + listen}
	if !c.Wait {
		argv = append(argv, "--continue")
	}
	argv = append(argv, exe)
	if len(args) > 0 {
		argv = append(argv, "--")
		argv = append(argv, args...)
	}
	return dlv, argv
}

// listening is what dlv prints on stdout when its API is up.
const listening = "API server listening at: "

// Address returns the address in dlv's "API server listening at: ADDR"
// line, and whether line is that line.
func Address(line string) (string, bool) {
	_, addr, ok := strings.Cut(line, listening)
	if !ok {
		return "", false
	}
	addr = strings.TrimSpace(addr)
	return addr, addr != ""
}

// Stop asks the dlv server at addr to kill its target and exit (a
// headless dlv that accepts several clients stays up after its target
// exits, until told to quit).
func Stop(ctx context.Context, addr string) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("delve: stop %s: %w", addr, err)
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	cl := jsonrpc.NewClient(nc)
	defer cl.Close()
	var out struct{}
	err = cl.Call("RPCServer.Detach", struct{ Kill bool }{Kill: true}, &out)
	// dlv may close the connection as it quits, before or after answering.
	if err != nil && !isGone(err) {
		return fmt.Errorf("delve: stop %s: %w", addr, err)
	}
	return nil
}

// isGone: the server closed the connection, as a quitting dlv does.
func isGone(err error) bool {
	return errors.Is(err, rpc.ErrShutdown) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
