package procxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/transport"
)

// Attach makes New use a child that is already running — started by hand,
// from an IDE or under a debugger, with ServeAt or PROCXY_LISTEN — through
// the Unix socket at path, instead of starting one, as go-plugin's
// reattach does. Everything else works as with a child New started: the
// object is constructed in the child with Config, calls, streams and
// events go to it. The parent did not start that process, so Close and
// Kill only close the connection: the child's process goes on serving
// the next parent, and a child that exits ends the proxy with an error
// wrapping rpc.ErrClosed (there is no exit status to report). With Retries, a
// call after the connection was lost attaches again.
//
// Setting PROCXY_ATTACH=path (or key=path,key2=path2, by type key or
// Func name) does the same without changing code.
func Attach(path string) Option {
	return optionFunc(func(o *options) { o.attach = path })
}

// attachFromEnv picks the path PROCXY_ATTACH gives for key: the path for
// "key=path", or a lone path without a key.
func attachFromEnv(spec, key string) string {
	var any string
	for item := range strings.SplitSeq(spec, ",") {
		k, path, ok := strings.Cut(strings.TrimSpace(item), "=")
		switch {
		case !ok && k != "":
			any = k
		case ok && k == key:
			return path
		}
	}
	return any
}

// attach connects to a child serving at p.o.attach and constructs the
// object in it.
func (p *Proxy[T]) attach(ctx context.Context) (*session, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", p.o.attach)
	if err != nil {
		return nil, fmt.Errorf("procxy: attach %s at %s (is the child serving there, with procxy.ServeAt or %s?): %w",
			p.o.key, p.o.attach, EnvListen, err)
	}
	s := p.newSession(&child{}, 0, nc)
	go p.watchAttached(s)
	return p.construct(ctx, s)
}

// watchAttached is watch for an attached child: its end is the end of the
// connection.
func (p *Proxy[T]) watchAttached(s *session) {
	defer close(s.watched)
	<-s.conn.Done()
	p.mu.Lock()
	ended := p.cur == s && !p.closed && p.o.retries == 0
	if p.cur == s {
		p.cur = nil
	}
	if ended && p.err == nil {
		p.err = fmt.Errorf("procxy: attached %s at %s: %w", p.o.key, p.o.attach, s.conn.Err())
	}
	p.mu.Unlock()
	close(s.exited)
	if ended {
		p.doneOnce.Do(func() { close(p.done) })
	}
}

// ServeAt serves parents that Attach at the Unix socket path, one object
// per connection, until ctx ends; then it closes the listener and the
// connections and returns ctx's cause. It is the child side of Attach, for
// a child started by hand: run the program with PROCXY_LISTEN=path (Main
// calls ServeAt), or call ServeAt from a main of its own. A stale socket
// file at path is replaced; a live one is an error. Types must be
// registered as for New.
//
// Options apply to the child's side, as with Main: Observe(ob) reports
// the calls served.
func ServeAt(ctx context.Context, path string, opts ...Option) error {
	o := newOptions("", opts)
	ln, err := transport.ListenUnix(ctx, path)
	if err != nil {
		return fmt.Errorf("procxy: serve at %s: %w", path, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("procxy", "child", "listen", path)
	log.Info("procxy: serving parents that attach", "pid", os.Getpid())
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[*rpc.Conn]bool{} // guarded by mu
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	for {
		nc, err := ln.Accept()
		if err != nil {
			ln.Close()
			mu.Lock()
			for c := range conns {
				c.Close()
			}
			mu.Unlock()
			wg.Wait()
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return fmt.Errorf("procxy: serve at %s: %w", path, err)
		}
		c := serveParent(nc, log, o.observer)
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Go(func() {
			<-c.Done()
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		})
	}
}

// listenMain is Main with PROCXY_LISTEN: serve until SIGINT or SIGTERM.
func listenMain(path string, opts []Option) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := ServeAt(ctx, path, opts...); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}
