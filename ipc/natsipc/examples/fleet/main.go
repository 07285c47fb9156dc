// Command fleet runs procxy objects on worker processes through NATS: the
// same Call a program makes to a child process goes to whichever worker
// of a queue group is free, on this host or another.
//
//	go run ./examples/fleet                  # the demo: a NATS server, 3 workers, a caller; one worker is killed halfway
//	go run ./examples/fleet hub              # an embedded nats-server on 127.0.0.1:4222
//	go run ./examples/fleet worker [URL]     # a worker (default nats://127.0.0.1:4222)
//	go run ./examples/fleet caller [URL]     # calls Resize in a loop and says who served each
//
// Run hub, a few workers and a caller in separate terminals, stop a
// worker with Ctrl-C or kill -9, start another: the caller goes on.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/procxy/procxy"
	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/natsipc"
)

// Thumbnailer is the work: in a real fleet, something that needs a
// process of its own (cgo, memory, a crash-prone library).
type Thumbnailer struct{}

// Resize pretends to resize an image and says who did it.
func (*Thumbnailer) Resize(ctx context.Context, name string, width int) (string, error) {
	select {
	case <-time.After(20 * time.Millisecond):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s at %dpx by worker %d on %s", name, width, os.Getpid(), host), nil
}

func init() { procxy.Register[Thumbnailer](nil, procxy.Name("example.Thumbnailer")) }

const defaultURL = "nats://127.0.0.1:4222"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	mode, url := "demo", defaultURL
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	if len(os.Args) > 2 {
		url = os.Args[2]
	}
	var err error
	switch mode {
	case "demo":
		err = demo(ctx)
	case "hub":
		err = hub(ctx)
	case "worker":
		err = worker(ctx, url)
	case "caller":
		err = caller(ctx, url, 0)
	default:
		err = fmt.Errorf("unknown mode %q: want demo, hub, worker or caller", mode)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

func hub(ctx context.Context) error {
	s, err := natsipc.StartServer(ctx, natsipc.ServerOptions{Port: 4222})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Println("nats-server listening on", s.URL())
	<-ctx.Done()
	return nil
}

func worker(ctx context.Context, url string) error {
	conn, err := natsipc.Connect(ctx, url, ipc.Name("fleet-worker"))
	if err != nil {
		return err
	}
	defer conn.Close()
	fmt.Printf("worker %d serving on %s\n", os.Getpid(), url)
	return procxy.Serve(ctx, conn)
}

// caller calls Resize until ctx ends (or n times, if n > 0) and prints
// each answer. Resize is idempotent, so a call whose worker dies is
// retried on another.
func caller(ctx context.Context, url string, n int) error {
	conn, err := natsipc.Connect(ctx, url, ipc.Name("fleet-caller"))
	if err != nil {
		return err
	}
	defer conn.Close()
	thumbs, err := procxy.NewRemote[Thumbnailer](conn, procxy.Name("example.Thumbnailer"),
		procxy.Retries(3), procxy.Idempotent("Resize"), procxy.Keepalive(100*time.Millisecond))
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := procxy.WaitWorkers(wctx, conn, "example.Thumbnailer", 1); err != nil {
		return err
	}
	for i := 1; n == 0 || i <= n; i++ {
		got, err := procxy.Call[string](ctx, thumbs, "Resize", fmt.Sprintf("photo%03d.jpg", i), 320)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			fmt.Println("call", i, "failed:", err)
			continue
		}
		fmt.Println(got)
	}
	return nil
}

// demo starts an embedded nats-server, three worker processes and a
// caller; it kills a worker halfway through the calls.
func demo(ctx context.Context) error {
	s, err := natsipc.StartServer(ctx, natsipc.ServerOptions{})
	if err != nil {
		return err
	}
	defer s.Close()
	fmt.Println("nats-server on", s.URL())
	var workers []*exec.Cmd
	for range 3 {
		cmd := exec.CommandContext(ctx, os.Args[0], "worker", s.URL())
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
		workers = append(workers, cmd)
	}
	defer func() {
		for _, w := range workers {
			w.Process.Signal(syscall.SIGTERM)
			w.Wait()
		}
	}()
	conn, err := natsipc.Connect(ctx, s.URL())
	if err != nil {
		return err
	}
	defer conn.Close()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := procxy.WaitWorkers(wctx, conn, "example.Thumbnailer", 3); err != nil {
		return err
	}
	ws, err := procxy.Workers(ctx, conn)
	if err != nil {
		return err
	}
	for _, w := range ws {
		fmt.Printf("worker %d on %s serves %s\n", w.PID, w.Host, typeKeys(w))
	}
	go func() {
		time.Sleep(300 * time.Millisecond)
		victim := workers[0].Process
		fmt.Printf("--- killing worker %d (kill -9)\n", victim.Pid)
		victim.Kill()
	}()
	return caller(ctx, s.URL(), 30)
}

func typeKeys(w procxy.WorkerInfo) string {
	var keys []string
	for _, t := range w.Types {
		keys = append(keys, t.Key)
	}
	return strings.Join(keys, ", ")
}
