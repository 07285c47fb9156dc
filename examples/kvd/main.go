// Command kvd is a key-value daemon and the command-line tool that talks
// to it, over package ipc: a private Unix socket for the current user,
// requests with deadlines, a queue-group-ready handler, and a stream of
// changes.
//
//	kvd serve &            # the daemon
//	kvd set color blue
//	kvd get color          # blue
//	kvd watch &            # prints the values, then every change as it happens
//	kvd set color green    # watch prints: color = green
//	kvd stop               # the daemon drains and exits
//
// KVD_ADDR overrides the address (default: the private socket "kvd").
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/procxy/procxy/ipc"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "kvd:", err)
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: kvd serve | set KEY VALUE | get KEY | del KEY | watch | stop")

// Change is what watchers receive.
type Change struct {
	Key, Value string
	Deleted    bool
}

func addr() string {
	if a := os.Getenv("KVD_ADDR"); a != "" {
		return a
	}
	return "kvd"
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	if args[0] == "serve" {
		return serve(ctx, out)
	}
	c, err := ipc.Dial(ctx, addr(), ipc.Name("kvd-cli"))
	if err != nil {
		return fmt.Errorf("is the daemon running? %w", err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	switch {
	case args[0] == "set" && len(args) == 3:
		_, err = ipc.Call[bool](ctx, c, "kv.set", [2]string{args[1], args[2]})
	case args[0] == "get" && len(args) == 2:
		var v string
		if v, err = ipc.Call[string](ctx, c, "kv.get", args[1]); err == nil {
			fmt.Fprintln(out, v)
		}
	case args[0] == "del" && len(args) == 2:
		_, err = ipc.Call[bool](ctx, c, "kv.del", args[1])
	case args[0] == "stop" && len(args) == 1:
		_, err = ipc.Call[bool](ctx, c, "kv.stop", true)
	case args[0] == "watch" && len(args) == 1:
		cancel() // a watch lasts until interrupted
		return watch(context.WithoutCancel(ctx), c, out)
	default:
		return errUsage
	}
	return err
}

func watch(ctx context.Context, c *ipc.Conn, out io.Writer) error {
	sig, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	for ch, err := range ipc.Stream[Change](sig, c, "kv.watch", "") {
		if err != nil {
			if sig.Err() != nil {
				return nil
			}
			return err
		}
		if ch.Deleted {
			fmt.Fprintf(out, "%s deleted\n", ch.Key)
		} else {
			fmt.Fprintf(out, "%s = %s\n", ch.Key, ch.Value)
		}
	}
	return nil
}

// store is the daemon's state.
type store struct {
	mu   sync.Mutex
	data map[string]string
	conn *ipc.Conn
}

func serve(ctx context.Context, out io.Writer) error {
	srv, err := ipc.Listen(ctx, addr())
	if err != nil {
		return err
	}
	defer srv.Close()
	s := &store{data: map[string]string{}, conn: srv.Conn()}
	c := srv.Conn()
	ipc.Handle(c, "kv.set", func(ctx context.Context, kv [2]string) (bool, error) {
		s.mu.Lock()
		s.data[kv[0]] = kv[1]
		s.mu.Unlock()
		return true, ipc.NewTopic[Change](c, "kv.changes").Publish(Change{Key: kv[0], Value: kv[1]})
	})
	ipc.Handle(c, "kv.get", func(ctx context.Context, key string) (string, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		v, ok := s.data[key]
		if !ok {
			return "", &ipc.RemoteError{Code: "E_NOKEY", Message: "no key " + key}
		}
		return v, nil
	})
	ipc.Handle(c, "kv.del", func(ctx context.Context, key string) (bool, error) {
		s.mu.Lock()
		delete(s.data, key)
		s.mu.Unlock()
		return true, ipc.NewTopic[Change](c, "kv.changes").Publish(Change{Key: key, Deleted: true})
	})
	// A watch is a stream fed by the changes topic, until the watcher goes.
	stopped := make(chan struct{})
	ipc.HandleStream(c, "kv.watch", func(ctx context.Context, _ string) iter.Seq2[Change, error] {
		return func(yield func(Change, error) bool) {
			changes := make(chan Change, 64)
			sub, err := ipc.NewTopic[Change](c, "kv.changes").Subscribe(func(_ context.Context, ch Change) error {
				select {
				case changes <- ch:
				default: // a watcher this far behind misses changes
				}
				return nil
			})
			if err != nil {
				yield(Change{}, err)
				return
			}
			defer sub.Unsubscribe()
			s.mu.Lock() // the current values first, then every change
			snapshot := make([]Change, 0, len(s.data))
			for k, v := range s.data {
				snapshot = append(snapshot, Change{Key: k, Value: v})
			}
			s.mu.Unlock()
			for _, ch := range snapshot {
				if !yield(ch, nil) {
					return
				}
			}
			for {
				select {
				case ch := <-changes:
					if !yield(ch, nil) {
						return
					}
				case <-ctx.Done(): // the watcher went away
					return
				case <-stopped: // the daemon stops: end the stream
					return
				}
			}
		}
	})
	var once sync.Once
	ipc.Handle(c, "kv.stop", func(ctx context.Context, _ bool) (bool, error) {
		once.Do(func() { close(stopped) })
		return true, nil
	})
	fmt.Fprintf(out, "kvd: serving on %s\n", srv.Addr())
	select {
	case <-ctx.Done():
	case <-stopped:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx) // in-flight requests finish first
}
