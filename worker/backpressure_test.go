package worker_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/rpc/wire"
	"github.com/procxy/procxy/worker"
)

// TestBackpressure: a handler streaming 64 MiB to a parent that does not
// read blocks in send once the socket buffers are full instead of queueing
// in memory (§9.4); when the parent reads again every chunk arrives in order.
func TestBackpressure(t *testing.T) {
	const chunk, total = 64 << 10, 1024
	var sent atomic.Int64
	h := start(t, worker.Options{}, func(w *worker.Worker) {
		worker.Stream(w, "flood", func(_ context.Context, _ []byte, send func([]byte) error) error {
			buf := make([]byte, chunk)
			for i := range total {
				buf[0] = byte(i)
				if err := send(buf); err != nil {
					return err
				}
				sent.Add(1)
			}
			return nil
		}, worker.WithCodec(codec.Raw))
	})
	p := h.dial(nil)
	p.writeHex("0001000000000100000000")

	// Wait until the producer has been stuck for a while (it must get stuck
	// long before it is done).
	deadline := time.Now().Add(waitLimit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	last, stableSince := int64(-1), time.Now()
	for time.Since(stableSince) < 300*time.Millisecond {
		if time.Now().After(deadline) {
			t.Fatalf("producer never stalled: %d chunks sent", sent.Load())
		}
		<-tick.C
		if n := sent.Load(); n != last {
			last, stableSince = n, time.Now()
		}
	}
	if last >= total || last*chunk > 16<<20 {
		t.Fatalf("producer sent %d chunks (%d MiB) to a parent that reads nothing; want it blocked after a few socket buffers",
			last, last*chunk>>20)
	}
	t.Logf("producer blocked after %d chunks (%d KiB)", last, last*chunk>>10)

	p.c.SetReadDeadline(time.Now().Add(waitLimit))
	for i := range total {
		f, err := p.r.ReadFrame()
		if err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
		if f.Flags != wire.FlagsStreamChunk || len(f.Payload) != chunk || f.Payload[0] != byte(i) {
			t.Fatalf("chunk %d: flags %v, %d bytes, first byte %d", i, f.Flags, len(f.Payload), f.Payload[0])
		}
	}
	if got, want := p.frame(), "00011b0000000100000000 "; got != want {
		t.Errorf("after the chunks: %s, want the end frame %s", got, want)
	}
}
