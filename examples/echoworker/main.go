// Command echoworker is a Procwire worker for tests and demos: a Node.js
// @procwire/core parent (or procxy's host) spawns it and calls its methods.
//
// Methods (msgpack unless noted), with ids in this order:
//
//	echo     result  returns its input unchanged
//	echoRaw  result  raw codec: returns the bytes unchanged
//	fail     result  {message} → an error response with that message
//	count    stream  {n} → n chunks {i: 0 … n−1}, then the end
//	slow     result  {ms} → waits ms, then {slept: ms}; on abort it stops at
//	                 once and emits progress {aborted: true, slept: <ms so far>}
//	accept   ack     acks {accepted: true}
//	notify   none    emits the event "notified" with its input
//	getenv   result  {name} → the variable's value, or nil if it is unset
//	crash    none    exits the process with status 3
//
// Events: progress (id 1), notified (id 2).
//
// It exits with status 0 when the session ends ($shutdown, end of stdin,
// connection closed) and logs to stderr only.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/worker"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("worker", "echoworker", "pid", os.Getpid())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newWorker(log).Run(ctx)
	stop()
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("echoworker: run failed", "err", err)
		os.Exit(1)
	}
}

type (
	failIn struct {
		Message string `msgpack:"message"`
	}
	countIn struct {
		N int `msgpack:"n"`
	}
	countOut struct {
		I int `msgpack:"i"`
	}
	slowIn struct {
		Ms int `msgpack:"ms"`
	}
	slowOut struct {
		Slept int `msgpack:"slept"`
	}
	progress struct {
		Aborted bool `msgpack:"aborted"`
		Slept   int  `msgpack:"slept"`
	}
	acceptOut struct {
		Accepted bool `msgpack:"accepted"`
	}
	getenvIn struct {
		Name string `msgpack:"name"`
	}
)

// newWorker registers the echoworker's methods and events.
func newWorker(log *slog.Logger) *worker.Worker {
	w := worker.New(worker.Options{Logger: log})
	progressEv := worker.Event[progress](w, "progress")
	notified := worker.Event[any](w, "notified")

	worker.Result(w, "echo", func(_ context.Context, in any) (any, error) { return in, nil })
	worker.Result(w, "echoRaw", func(_ context.Context, in []byte) ([]byte, error) { return in, nil },
		worker.WithCodec(codec.Raw))
	worker.Result(w, "fail", func(_ context.Context, in failIn) (any, error) { return nil, errors.New(in.Message) })
	worker.Stream(w, "count", func(_ context.Context, in countIn, send func(countOut) error) error {
		for i := range in.N {
			if err := send(countOut{I: i}); err != nil {
				return err
			}
		}
		return nil
	})
	worker.Result(w, "slow", func(ctx context.Context, in slowIn) (slowOut, error) {
		start := time.Now()
		t := time.NewTimer(time.Duration(in.Ms) * time.Millisecond)
		defer t.Stop()
		select {
		case <-t.C:
			return slowOut{Slept: in.Ms}, nil
		case <-ctx.Done():
			slept := int(time.Since(start).Milliseconds())
			// The handler's context is done; the event goes out on its own.
			if err := progressEv.Emit(context.Background(), progress{Aborted: true, Slept: slept}); err != nil {
				log.Debug("echoworker: progress not sent", "err", err)
			}
			return slowOut{}, fmt.Errorf("slow: aborted after %d ms: %w", slept, ctx.Err())
		}
	})
	worker.Ack(w, "accept", func(context.Context, any) (acceptOut, error) { return acceptOut{Accepted: true}, nil })
	worker.None(w, "notify", func(ctx context.Context, in any) error { return notified.Emit(ctx, in) })
	worker.Result(w, "getenv", func(_ context.Context, in getenvIn) (*string, error) {
		if v, ok := os.LookupEnv(in.Name); ok {
			return &v, nil
		}
		return nil, nil
	})
	worker.None(w, "crash", func(context.Context, any) error {
		log.Info("echoworker: crash requested; exiting with status 3")
		os.Exit(3)
		return nil
	})
	return w
}
