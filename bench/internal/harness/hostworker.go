package harness

import (
	"context"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/procxy/procxy/host"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/worker"
)

// host → Go worker: procxy's Procwire parent (package host) spawning this
// binary as a Procwire worker (package worker) that serves echoRaw with
// the raw codec, as examples/echoworker does; the parent calls
// host.CallInto(ctx, m, "echoRaw", in, &out). The worker listens on its own
// private Unix socket and announces it in its $init line, as every
// Procwire worker does.

const workerRole = "procwire-worker"

func init() { pluginServers[workerRole] = serveWorker }

func serveWorker() {
	w := worker.New(worker.Options{Logger: slog.New(slog.DiscardHandler)})
	worker.Result(w, "echoRaw", func(_ context.Context, in []byte) ([]byte, error) { return in, nil },
		worker.WithCodec(codec.Raw))
	if err := w.Run(context.Background()); err != nil {
		slog.Error("procxybench worker", "err", err)
	}
}

type hostClient struct {
	m *host.Module
}

func startHostWorker() (Client, error) {
	m, err := host.NewModule(host.Config{
		Name:       "echo",
		Executable: os.Args[0],
		Env:        []string{EnvRole + "=" + workerRole},
		Methods:    []host.Method{{Name: "echoRaw", Request: codec.Raw, Response: codec.Raw}},
		Logger:     slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := m.Spawn(ctx); err != nil {
		return nil, err
	}
	return &hostClient{m: m}, nil
}

func (c *hostClient) Echo(ctx context.Context, in, out []byte) ([]byte, error) {
	err := host.CallInto(ctx, c.m, "echoRaw", in, &out)
	return out, err
}

// PID is the worker's process id.
func (c *hostClient) PID() int { return c.m.PID() }

func (c *hostClient) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.m.Shutdown(ctx)
}
