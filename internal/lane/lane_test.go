package lane_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"strconv"
	"testing"

	"github.com/procxy/procxy/internal/lane"
)

func TestRefRoundTrip(t *testing.T) {
	for _, r := range []lane.Ref{{}, {Off: 1<<40 + 3, Len: 1<<32 - 1, Seq: 7}} {
		b := r.Append(nil)
		got, err := lane.ParseRef(b)
		if err != nil || got != r || len(b) != lane.RefSize {
			t.Errorf("ParseRef(Append(%+v)) = %+v, %v (%d bytes)", r, got, err, len(b))
		}
	}
	for _, n := range []int{0, 15, 17} {
		if _, err := lane.ParseRef(make([]byte, n)); !errors.Is(err, lane.ErrProtocol) {
			t.Errorf("ParseRef of %d bytes: %v, want ErrProtocol", n, err)
		}
	}
}

func TestOffer(t *testing.T) {
	o := lane.Offer{Parent: 1 << 20, Child: 2 << 20}
	b := o.Append(nil)
	if got, err := lane.ParseOffer(b, 4<<20); err != nil || got != o {
		t.Errorf("ParseOffer(Append(%+v)) = %+v, %v", o, got, err)
	}
	if _, err := lane.ParseOffer(b, 1<<20); !errors.Is(err, lane.ErrProtocol) {
		t.Errorf("an offer above the limit: %v, want ErrProtocol", err)
	}
	if _, err := lane.ParseOffer(lane.Offer{Parent: 0, Child: 1}.Append(nil), 4<<20); !errors.Is(err, lane.ErrProtocol) {
		t.Errorf("an empty region: %v, want ErrProtocol", err)
	}
	b[0] = 9
	if _, err := lane.ParseOffer(b, 4<<20); !errors.Is(err, lane.ErrUnsupported) {
		t.Errorf("version 9: %v, want ErrUnsupported", err)
	}
	if _, err := lane.ParseOffer(b[:10], 4<<20); !errors.Is(err, lane.ErrProtocol) {
		t.Errorf("a short offer: %v, want ErrProtocol", err)
	}
}

func TestRelease(t *testing.T) {
	var got []uint32
	err := lane.ParseRelease(lane.AppendRelease(nil, 1, 2, 1<<32-1), func(s uint32) error { got = append(got, s); return nil })
	if err != nil || len(got) != 3 || got[2] != 1<<32-1 {
		t.Errorf("ParseRelease = %v, %v", got, err)
	}
	for _, b := range [][]byte{nil, {1, 2, 3}, {1, 2, 3, 4, 5}} {
		if err := lane.ParseRelease(b, func(uint32) error { return nil }); !errors.Is(err, lane.ErrProtocol) {
			t.Errorf("ParseRelease(%x): %v, want ErrProtocol", b, err)
		}
	}
}

// TestSendAndReceive: a payload goes in, its reference checks out on the
// other side (which sees the same memory), is released, and the room is
// reused first; what does not fit is refused.
func TestSendAndReceive(t *testing.T) {
	shared := lane.HeapRegion(1 << 20)
	sender := lane.New(shared, lane.HeapRegion(64), 1)
	receiver := lane.New(lane.HeapRegion(64), shared, 1)

	send := func(p []byte) lane.Ref {
		t.Helper()
		s, ok := sender.Put([][]byte{p[:len(p)/2], p[len(p)/2:]}, len(p))
		if !ok {
			t.Fatalf("no room for %d bytes", len(p))
		}
		var ref [lane.RefSize]byte
		sender.Ref(s, ref[:])
		r, err := lane.ParseRef(ref[:])
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	receive := func(r lane.Ref) []byte {
		t.Helper()
		if err := receiver.Check(r, 1<<20); err != nil {
			t.Fatal(err)
		}
		out := make([]byte, r.Len)
		if err := receiver.Get(r, 0, out); err != nil {
			t.Fatal(err)
		}
		if err := sender.Release(r.Seq); err != nil {
			t.Fatal(err)
		}
		return out
	}

	a, b := bytes.Repeat([]byte{1}, 300<<10), bytes.Repeat([]byte{2}, 500<<10)
	ra, rb := send(a), send(b)
	if ra.Off != 0 || rb.Off < uint64(len(a)) || ra.Seq != 1 || rb.Seq != 2 {
		t.Errorf("refs %+v %+v: want offsets 0 and after it, sequence 1 and 2", ra, rb)
	}
	if _, ok := sender.Put([][]byte{make([]byte, 300<<10)}, 300<<10); ok {
		t.Error("Put found room in a full region")
	}
	if got := receive(ra); !bytes.Equal(got, a) {
		t.Error("payload a changed on the way")
	}
	if rc := send(bytes.Repeat([]byte{3}, 200<<10)); rc.Off != 0 {
		t.Errorf("after a release, the next payload went to offset %d, want 0 (first fit)", rc.Off)
	}
	if got := receive(rb); !bytes.Equal(got, b) {
		t.Error("payload b changed on the way")
	}
	if err := sender.Release(rb.Seq); !errors.Is(err, lane.ErrProtocol) {
		t.Errorf("a second release: %v, want ErrProtocol", err)
	}
	if err := receiver.Check(rb, 1<<20); !errors.Is(err, lane.ErrProtocol) {
		t.Errorf("a replayed reference: %v, want ErrProtocol", err)
	}
	if _, ok := sender.Put(nil, 2<<20); ok {
		t.Error("Put found room for more than the region holds")
	}
	sender.Close()
	if _, ok := sender.Put([][]byte{{1}}, 1); ok {
		t.Error("Put after Close succeeded")
	}
}

func TestCheckBounds(t *testing.T) {
	l := lane.New(lane.HeapRegion(64), lane.HeapRegion(1000), 1)
	for i, r := range []lane.Ref{
		{Off: 1000, Len: 1, Seq: 1},
		{Off: 999, Len: 2, Seq: 1},
		{Off: 1<<64 - 1, Len: 2, Seq: 1},
		{Off: 0, Len: 0, Seq: 1},
		{Off: 0, Len: 11, Seq: 1}, // above max
		{Off: 0, Len: 1, Seq: 2},  // out of sequence
	} {
		if err := l.Check(r, 10); !errors.Is(err, lane.ErrProtocol) {
			t.Errorf("%d: Check(%+v) = %v, want ErrProtocol", i, r, err)
		}
	}
	if err := l.Check(lane.Ref{Off: 990, Len: 10, Seq: 1}, 10); err != nil {
		t.Errorf("the last 10 bytes: %v", err)
	}
}

// TestRegion: a region created here and mapped from its descriptor (as the
// peer does) is the same memory; an unsealed file is refused.
func TestRegion(t *testing.T) {
	if !lane.Supported {
		t.Skip("no shared memory here")
	}
	r, err := lane.Create(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dup, err := os.Open("/proc/self/fd/" + strconv.Itoa(int(r.File().Fd())))
	if err != nil {
		t.Fatal(err)
	}
	m, err := lane.Map(dup, 1<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	copy(r.Bytes()[4096:], "shared")
	if got := string(m.Bytes()[4096:4102]); got != "shared" {
		t.Errorf("the mapping reads %q, want %q", got, "shared")
	}
	f, _ := os.CreateTemp(t.TempDir(), "plain")
	f.Truncate(1 << 20)
	if _, err := lane.Map(f, 1<<20, false); !errors.Is(err, lane.ErrProtocol) {
		t.Errorf("an unsealed file: %v, want ErrProtocol", err)
	}
	lane.TestingDisable.Store(true)
	defer lane.TestingDisable.Store(false)
	if _, err := lane.Create(1 << 20); !errors.Is(err, lane.ErrUnsupported) {
		t.Errorf("Create with memfd disabled: %v, want ErrUnsupported", err)
	}
}

// FuzzLane runs a program of sends, releases and references from a
// hostile peer against a lane, checking on the way that live payloads
// never overlap or leave the region, that the receiver accepts only
// references inside the peer's region in sequence, and that releases of
// anything not in flight are refused.
func FuzzLane(f *testing.F) {
	f.Add([]byte{0, 10, 0, 20, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1})
	f.Add(lane.Ref{Off: 100, Len: 50, Seq: 1}.Append([]byte{2}))
	f.Add(lane.Ref{Off: 1<<64 - 1, Len: 1 << 31, Seq: 1}.Append([]byte{2}))
	f.Add([]byte{3, 0, 0, 0, 1, 3, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		const size = 4096
		mine := lane.New(lane.HeapRegion(size), lane.HeapRegion(size), 1)
		type live struct {
			off, n uint64
			seq    uint32
		}
		var inFlight []live
		nextRecv := uint32(1)
		for len(prog) > 0 {
			op := prog[0] % 4
			prog = prog[1:]
			switch op {
			case 0, 1: // send n bytes (0: n < 256; 1: n up to 65535)
				if len(prog) < 1+int(op) {
					return
				}
				n := int(prog[0])
				if op == 1 {
					n = int(binary.BigEndian.Uint16(prog))
				}
				prog = prog[1+int(op):]
				s, ok := mine.Put([][]byte{make([]byte, n)}, n)
				if !ok {
					continue
				}
				var b [lane.RefSize]byte
				mine.Ref(s, b[:])
				r, _ := lane.ParseRef(b[:])
				if r.Off+uint64(r.Len) > size {
					t.Fatalf("payload of %d bytes placed at %d, past the %d-byte region", r.Len, r.Off, size)
				}
				for _, l := range inFlight {
					if r.Off < l.off+l.n && l.off < r.Off+uint64(r.Len) {
						t.Fatalf("payload at %d+%d overlaps one in flight at %d+%d", r.Off, r.Len, l.off, l.n)
					}
				}
				inFlight = append(inFlight, live{r.Off, uint64(r.Len), r.Seq})
			case 2: // a reference from the peer
				if len(prog) < lane.RefSize {
					return
				}
				r, err := lane.ParseRef(prog[:lane.RefSize])
				prog = prog[lane.RefSize:]
				if err != nil {
					t.Fatal(err)
				}
				err = mine.Check(r, 1<<20)
				valid := r.Seq == nextRecv && r.Len > 0 && r.Off <= size && uint64(r.Len) <= size-r.Off
				if (err == nil) != valid {
					t.Fatalf("Check(%+v) = %v; valid: %v", r, err, valid)
				}
				if err == nil {
					nextRecv++
					if err := mine.Get(r, 0, make([]byte, r.Len)); err != nil {
						t.Fatal(err)
					}
				}
			case 3: // a release from the peer
				if len(prog) < 4 {
					return
				}
				seq := binary.BigEndian.Uint32(prog)
				prog = prog[4:]
				err := lane.ParseRelease(lane.AppendRelease(nil, seq), mine.Release)
				i := -1
				for j, l := range inFlight {
					if l.seq == seq {
						i = j
					}
				}
				if (err == nil) != (i >= 0) {
					t.Fatalf("release of %d: %v; in flight: %v", seq, err, i >= 0)
				}
				if i >= 0 {
					inFlight = append(inFlight[:i], inFlight[i+1:]...)
				}
			}
		}
	})
}
