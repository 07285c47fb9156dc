package procxy_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"unsafe"

	"github.com/procxy/procxy"
)

// Blobs moves byte slices: the object proxy's large-payload path.
type Blobs struct{}

func (Blobs) Echo(b []byte) []byte { return b }

// Fill returns n bytes, each its index mod 251.
func (Blobs) Fill(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// Mix takes bytes between other arguments and checks them in the child.
func (Blobs) Mix(tag string, b []byte, n int) (string, error) {
	if len(b) != n {
		return "", fmt.Errorf("got %d bytes, want %d", len(b), n)
	}
	for i, c := range b {
		if c != byte(i%251) {
			return "", fmt.Errorf("byte %d is %d, want %d", i, c, byte(i%251))
		}
	}
	return fmt.Sprintf("%s:%d", tag, n), nil
}

func init() { procxy.Register[Blobs](nil) }

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// TestBytesSizes sends and receives []byte arguments and results at sizes
// around every threshold of the data path: msgpack's reference threshold
// (4 KiB), the frame reader's buffer (64 KiB), the shared-memory lane's
// threshold (256 KiB), and the reader's eager allocation limit (16 MiB) —
// with the lane and without.
func TestBytesSizes(t *testing.T) {
	for _, shm := range []bool{true, false} {
		t.Run(fmt.Sprintf("SharedMemory(%v)", shm), func(t *testing.T) { testBytesSizes(t, shm) })
	}
}

func testBytesSizes(t *testing.T, shm bool) {
	p, err := procxy.New[Blobs](t.Context(), procxy.Logger(childLog(t)), procxy.SharedMemory(shm))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, n := range []int{0, 1, 4<<10 - 1, 4 << 10, 4<<10 + 1, 64<<10 - 16, 64 << 10, 64<<10 + 1,
		256<<10 - 1, 256 << 10, 256<<10 + 1, 1 << 20, 16<<20 + 7} {
		in := pattern(n)
		got, err := procxy.Call[[]byte](t.Context(), p, "Echo", in)
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("Echo(%d bytes) = %d bytes, %v", n, len(got), err)
		}
		tag, err := procxy.Call[string](t.Context(), p, "Mix", "x", in, n)
		if err != nil || tag != fmt.Sprintf("x:%d", n) {
			t.Fatalf("Mix(%d bytes) = %q, %v", n, tag, err)
		}
		got, err = procxy.Call[[]byte](t.Context(), p, "Fill", n)
		if err != nil || !bytes.Equal(got, in) {
			t.Fatalf("Fill(%d) = %d bytes, %v", n, len(got), err)
		}
	}
}

// TestCallInto: a result buffer with room for the result is filled in
// place, large or small; one without room is replaced.
func TestCallInto(t *testing.T) {
	p, err := procxy.New[Blobs](t.Context(), procxy.Logger(childLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	buf := make([]byte, 0, 2<<20)
	for _, n := range []int{10, 100 << 10, 2 << 20} {
		in := pattern(n)
		out := buf
		if err := procxy.CallInto(t.Context(), p, "Echo", &out, in); err != nil || !bytes.Equal(out, in) {
			t.Fatalf("CallInto Echo(%d bytes) = %d bytes, %v", n, len(out), err)
		}
		if unsafe.SliceData(out) != unsafe.SliceData(buf) {
			t.Errorf("%d bytes: the result was not read into the caller's buffer", n)
		}
	}
	out := make([]byte, 0, 10)
	if err := procxy.CallInto(t.Context(), p, "Fill", &out, 1<<20); err != nil || !bytes.Equal(out, pattern(1<<20)) {
		t.Fatalf("CallInto into a small buffer: %d bytes, %v", len(out), err)
	}
	var n int
	if err := procxy.CallInto(t.Context(), p, "Echo", &n, []byte("x")); err == nil {
		t.Error("CallInto decoding []byte into *int: got nil error")
	}
	if err := procxy.CallInto(t.Context(), p, "Echo", nil, []byte("x")); err == nil {
		t.Error("CallInto with a nil out: got nil error")
	}
}

// TestCallAllocs pins the parent's allocations per object-proxy call: the
// argument that is not a small integer, boxed by the caller's ...any, and
// the result. Anything more is a regression of the hot path. A context
// that can be cancelled costs nothing more when it is reused: the
// connection keeps its registration from one call to the next.
func TestCallAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	p := newCalc(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, c := range []struct {
		name string
		ctx  context.Context
	}{{"Background", context.Background()}, {"reused WithCancel", ctx}} {
		a := 1000
		allocs := testing.AllocsPerRun(2000, func() {
			a++
			if sum, err := procxy.Call[int](c.ctx, p, "Add", a, 3); err != nil || sum != a+3 {
				t.Fatalf("Add(%d, 3) = %d, %v", a, sum, err)
			}
		})
		if allocs > 2 {
			t.Errorf("%s: procxy.Call allocates %.1f times per call, want at most 2", c.name, allocs)
		}
		t.Logf("%s: %.2f allocations per call", c.name, allocs)
	}
}
