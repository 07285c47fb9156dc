package ipc_test

import (
	"testing"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/rpc/wire"
)

// TestOutboxCutsAtFrames: what is left of a queue after a broken write
// starts at a frame boundary, wherever the write stopped.
func TestOutboxCutsAtFrames(t *testing.T) {
	sizes := []int{0, 5, 70000, 3, 100 << 10, 1}
	total := 0
	var ends []int
	for _, n := range sizes {
		total += wire.HeaderSize + n
		ends = append(ends, total)
	}
	for _, w := range []int{0, 1, 10, 11, 16, 17, 30, 70000, ends[2], ends[2] + 1, ends[3] + 50, total - 1, total} {
		rest := ipc.OutboxCut(sizes, w)
		want := 0 // the first frame starting at or after w
		for i := len(ends) - 1; i >= 0; i-- {
			start := ends[i] - wire.HeaderSize - sizes[i]
			if start >= w {
				want = total - start
			}
		}
		if len(rest) != want {
			t.Errorf("written %d: kept %d bytes, want %d", w, len(rest), want)
			continue
		}
		for len(rest) > 0 { // whole frames
			h, err := wire.ParseHeader(rest)
			if err != nil || int(h.Len)+wire.HeaderSize > len(rest) {
				t.Fatalf("written %d: kept bytes do not parse as frames", w)
			}
			rest = rest[wire.HeaderSize+int(h.Len):]
		}
	}
}
