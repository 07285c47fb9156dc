package worker_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/procxy/procxy/rpc"
	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/worker"
)

// The test service registers the methods and events of the protocol's
// child-side vectors in the same order, so their ids match §11.2 and the
// replies can be compared byte for byte: echo=1, generate=2, enqueue=3,
// ackEmpty=4, log=5, blob=6, fail=7, failObj=8, failStream=9, emit=10,
// slow=11, plus blobFail=12, panicky=13; events progress=1, status=2.
type service struct {
	aborted chan uint64   // slow: the handler's context was cancelled (its input)
	release chan struct{} // slow: closed by free to let aborted handlers return
	once    sync.Once
	logged  chan string // log: inputs
}

// free lets aborted slow handlers return.
func (s *service) free() { s.once.Do(func() { close(s.release) }) }

func newService() *service {
	return &service{aborted: make(chan uint64, 100), release: make(chan struct{}), logged: make(chan string, 100)}
}

type (
	genIn struct {
		N int `msgpack:"n"`
	}
	genOut struct {
		I int `msgpack:"i"`
	}
	queued struct {
		Queued bool `msgpack:"queued"`
	}
	logged struct {
		Logged string `msgpack:"logged"`
	}
	percent struct {
		Percent int `msgpack:"percent"`
	}
)

func (s *service) register(w *worker.Worker) {
	progress := worker.Event[percent](w, "progress")
	status := worker.Event[logged](w, "status")

	// msgpack.RawMessage echoes the payload as it came (in Node's canonical form).
	worker.Result(w, "echo", func(_ context.Context, in msgpack.RawMessage) (msgpack.RawMessage, error) { return in, nil })
	worker.Stream(w, "generate", func(_ context.Context, in genIn, send func(genOut) error) error {
		for i := range in.N {
			if err := send(genOut{I: i}); err != nil {
				return err
			}
		}
		return nil
	})
	worker.Ack(w, "enqueue", func(context.Context, any) (queued, error) { return queued{Queued: true}, nil })
	worker.Ack(w, "ackEmpty", func(context.Context, any) (any, error) { return nil, nil })
	worker.None(w, "log", func(ctx context.Context, in string) error {
		s.logged <- in
		return status.Emit(ctx, logged{Logged: in})
	})
	worker.Result(w, "blob", func(_ context.Context, in []byte) ([]byte, error) { return in, nil }, worker.WithCodec(codec.Raw))
	worker.Result(w, "fail", func(context.Context, any) (any, error) { return nil, errors.New("boom") })
	worker.Result(w, "failObj", func(context.Context, any) (any, error) {
		return nil, &rpc.RemoteError{Message: "bad input", Code: "E_BAD"}
	})
	worker.Stream(w, "failStream", func(_ context.Context, _ any, send func(int) error) error {
		if err := send(0); err != nil {
			return err
		}
		return &rpc.RemoteError{Message: "stream broke"}
	})
	worker.Result(w, "emit", func(ctx context.Context, _ any) (any, error) {
		return nil, progress.Emit(ctx, percent{Percent: 50})
	})
	worker.Result(w, "slow", func(ctx context.Context, in uint64) (string, error) {
		<-ctx.Done()
		s.aborted <- in
		<-s.release
		return "late-after-abort", nil
	})
	worker.Result(w, "blobFail", func(context.Context, []byte) ([]byte, error) { return nil, errors.New("raw boom") },
		worker.WithCodec(codec.Raw))
	worker.Result(w, "panicky", func(context.Context, any) (any, error) { panic("oops") })
}

// startService runs the test service with opts.
func startService(t *testing.T, opts worker.Options) (*harness, *service) {
	t.Helper()
	s := newService()
	h := start(t, opts, s.register)
	t.Cleanup(s.free) // runs before the harness's cleanup
	return h, s
}
