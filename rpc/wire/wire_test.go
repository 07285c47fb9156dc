package wire_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"
	"testing/iotest"
	"time"
	"unsafe"

	"github.com/procxy/procxy/rpc/wire"
	"github.com/procxy/procxy/transport"
)

type want struct {
	method uint16
	flags  wire.Flags
	id     uint32
}

var vectorFields = map[string]want{
	"F01": {0x0001, 0x00, 1}, "F02": {0x0001, 0x03, 1}, "F03": {0x0007, 0x07, 6},
	"F04": {0x0008, 0x07, 7}, "F05": {0x0063, 0x07, 5}, "F06": {0x0003, 0x23, 3},
	"F07": {0x0004, 0x23, 4}, "F08": {0x0002, 0x0b, 2}, "F09": {0x0002, 0x1b, 2},
	"F10": {0x0009, 0x0f, 8}, "F11": {0x0001, 0x01, 0}, "F12": {0xffff, 0x00, 4},
	"F13": {0xfffe, 0x00, 0}, "F14": {0x0003, 0x00, 0}, "F15": {0x0001, 0x03, 0xffffffff},
	"F16": {0x0001, 0x00, 0xffffffff}, "F17": {0x0006, 0x00, 10}, "F18": {0x000a, 0x03, 9},
}

func sortedKeys[M ~map[string]V, V any](m M) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestFrameVectors(t *testing.T) {
	for _, name := range sortedKeys(frameVectors) {
		t.Run(name, func(t *testing.T) {
			raw := unhex(frameVectors[name])
			w := vectorFields[name]
			payload := raw[wire.HeaderSize:]

			// Encode: header + payload through the Writer gives exactly the vector.
			var buf bytes.Buffer
			fw := wire.NewWriter(&buf)
			if err := fw.WriteFrame(wire.Header{Method: w.method, Flags: w.flags, ID: w.id}, payload); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(buf.Bytes(), raw) {
				t.Errorf("WriteFrame = %x, want %x", buf.Bytes(), raw)
			}
			h := wire.Header{Method: w.method, Flags: w.flags, ID: w.id, Len: uint32(len(payload))}
			if got := h.Append(nil); !bytes.Equal(got, raw[:wire.HeaderSize]) {
				t.Errorf("Append = %x, want %x", got, raw[:wire.HeaderSize])
			}

			// Decode, reading one byte at a time to exercise buffering.
			r := wire.NewReader(iotest.OneByteReader(bytes.NewReader(raw)), 0)
			f, err := r.ReadFrame()
			if err != nil {
				t.Fatal(err)
			}
			if f.Header != h || !bytes.Equal(f.Payload, payload) {
				t.Errorf("ReadFrame = %+v %x, want %+v %x", f.Header, f.Payload, h, payload)
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Errorf("second ReadFrame error = %v, want io.EOF", err)
			}
		})
	}
}

func TestInvalidHeaders(t *testing.T) {
	wantErr := map[string]error{
		"X01": wire.ErrPayloadTooLarge, "X02": wire.ErrReservedFlags,
		"X03": wire.ErrInvalidMethod, "X04": wire.ErrPayloadTooLarge,
	}
	for _, name := range sortedKeys(invalidHeaders) {
		t.Run(name, func(t *testing.T) {
			// The header is followed by data that must never be read.
			src := &countingReader{r: bytes.NewReader(append(unhex(invalidHeaders[name]), make([]byte, 100)...))}
			r := wire.NewReader(iotest.OneByteReader(src), 0)
			_, err := r.ReadFrame()
			var he *wire.HeaderError
			if !errors.Is(err, wantErr[name]) || !errors.As(err, &he) {
				t.Fatalf("ReadFrame error = %v, want %v as *HeaderError", err, wantErr[name])
			}
			if src.n != wire.HeaderSize {
				t.Errorf("read %d bytes, want exactly the %d header bytes", src.n, wire.HeaderSize)
			}
			if _, err2 := r.ReadFrame(); !errors.Is(err2, wantErr[name]) {
				t.Errorf("error is not sticky: %v", err2)
			}
		})
	}
}

func TestHeaderErrorText(t *testing.T) {
	tests := []struct {
		hdr, want string
	}{
		{invalidHeaders["X01"], "wire: payload too large: 1073741825 bytes, configured max: 1073741824 bytes"},
		{invalidHeaders["X02"], "wire: reserved flag bits must be zero, got: 0b1000000"},
		{invalidHeaders["X03"], "wire: method id 0 is reserved"},
	}
	for _, tt := range tests {
		h, _ := wire.ParseHeader(unhex(tt.hdr))
		if err := h.Validate(wire.DefaultMaxPayload); err == nil || err.Error() != tt.want {
			t.Errorf("Validate(%s) = %v, want %q", tt.hdr, err, tt.want)
		}
	}
}

func TestClampMax(t *testing.T) {
	tests := []struct{ in, want int }{
		{0, wire.DefaultMaxPayload}, {-1, wire.DefaultMaxPayload}, {1024, 1024},
		{1 << 40, wire.AbsoluteMaxPayload},
	}
	for _, tt := range tests {
		if got := wire.ClampMax(tt.in); got != tt.want {
			t.Errorf("ClampMax(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestConfiguredLimit(t *testing.T) {
	var buf bytes.Buffer
	fw := wire.NewWriter(&buf)
	fw.WriteFrame(wire.Header{Method: 1}, make([]byte, 1024))
	fw.WriteFrame(wire.Header{Method: 1}, make([]byte, 1025))
	r := wire.NewReader(&buf, 1024)
	if _, err := r.ReadFrame(); err != nil {
		t.Fatalf("1024-byte frame: %v", err)
	}
	if _, err := r.ReadFrame(); !errors.Is(err, wire.ErrPayloadTooLarge) {
		t.Fatalf("1025-byte frame: got %v, want ErrPayloadTooLarge", err)
	}
}

// TestThreeGiBHeader shows that a header claiming 3 GiB is refused before a
// single payload byte is read or allocated.
func TestThreeGiBHeader(t *testing.T) {
	hdr := wire.Header{Method: 1, Len: 3 << 30}.Append(nil)
	var err error
	allocs := testing.AllocsPerRun(100, func() {
		r := wire.NewReader(bytes.NewReader(hdr), wire.AbsoluteMaxPayload)
		_, err = r.ReadFrame()
	})
	if !errors.Is(err, wire.ErrPayloadTooLarge) {
		t.Fatalf("got %v, want ErrPayloadTooLarge", err)
	}
	// NewReader's own buffer and the error value; nothing proportional to 3 GiB.
	if allocs > 4 {
		t.Errorf("allocations = %v, want at most 4", allocs)
	}
}

func TestTruncated(t *testing.T) {
	raw := unhex(frameVectors["F01"])
	for n := 1; n < len(raw); n++ {
		r := wire.NewReader(bytes.NewReader(raw[:n]), 0)
		if _, err := r.ReadFrame(); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%d of %d bytes: got %v, want io.ErrUnexpectedEOF", n, len(raw), err)
		}
	}
}

func TestLargePayloads(t *testing.T) {
	sizes := []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 1 << 20, 20 << 20}
	var buf bytes.Buffer
	fw := wire.NewWriter(&buf)
	for i, n := range sizes {
		p := bytes.Repeat([]byte{byte(i + 1)}, n)
		if err := fw.WriteFrame(wire.Header{Method: uint16(i + 1), ID: uint32(n)}, p); err != nil {
			t.Fatal(err)
		}
	}
	r := wire.NewReader(iotest.HalfReader(&buf), 0)
	for i, n := range sizes {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if f.Method != uint16(i+1) || f.ID != uint32(n) || len(f.Payload) != n {
			t.Fatalf("frame %d: got %+v (%d bytes), want %d bytes", i, f.Header, len(f.Payload), n)
		}
		if n > 0 && (f.Payload[0] != byte(i+1) || f.Payload[n-1] != byte(i+1)) {
			t.Fatalf("frame %d: payload corrupted", i)
		}
		if f.Owned != (n > 64<<10) {
			t.Errorf("frame %d (%d bytes): Owned = %v", i, n, f.Owned)
		}
	}
}

// TestLyingLength: a peer that claims 1 GiB and sends 1 MiB makes the reader
// allocate a bounded amount, not the claimed size.
func TestLyingLength(t *testing.T) {
	data := append(wire.Header{Method: 1, Len: 1 << 30}.Append(nil), make([]byte, 1<<20)...)
	r := wire.NewReader(bytes.NewReader(data), 0)
	var err error
	allocs := testing.Benchmark(func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			r = wire.NewReader(bytes.NewReader(data), 0)
			_, err = r.ReadFrame()
		}
	}).AllocedBytesPerOp()
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %v, want io.ErrUnexpectedEOF", err)
	}
	if allocs > 40<<20 {
		t.Errorf("allocated %d bytes for a 1 MiB frame claiming 1 GiB", allocs)
	}
}

func TestConcurrentWriters(t *testing.T) {
	pr, pw := io.Pipe()
	fw := wire.NewWriter(pw)
	const writers, each = 16, 500
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				n := (g*each + i) % 40000 // small and large payloads
				p := bytes.Repeat([]byte{byte(g)}, n)
				if err := fw.WriteFrame(wire.Header{Method: uint16(g + 1), ID: uint32(i)}, p); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	go func() { wg.Wait(); pw.Close() }()
	r := wire.NewReader(pr, 0)
	next := make([]uint32, writers)
	for range writers * each {
		f, err := r.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		g := int(f.Method) - 1
		if f.ID != next[g] {
			t.Fatalf("writer %d: got frame %d, want %d (frames reordered)", g, f.ID, next[g])
		}
		next[g]++
		if slices.ContainsFunc(f.Payload, func(b byte) bool { return b != byte(g) }) {
			t.Fatalf("writer %d frame %d: interleaved payload", g, f.ID)
		}
	}
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("got %v, want io.EOF", err)
	}
}

func TestWriterStickyError(t *testing.T) {
	boom := errors.New("boom")
	fw := wire.NewWriter(errWriter{boom})
	if err := fw.WriteFrame(wire.Header{Method: 1}, nil); !errors.Is(err, boom) {
		t.Fatalf("got %v, want boom", err)
	}
	if err := fw.WriteFrame(wire.Header{Method: 1}, nil); !errors.Is(err, boom) {
		t.Fatalf("second write: got %v, want boom", err)
	}
}

func TestFlagsString(t *testing.T) {
	for f, want := range map[wire.Flags]string{0: "0", wire.FlagsAck: "ToParent|Response|Ack", 0x40: "Lane", 0x80: "Reserved7"} {
		if got := f.String(); got != want {
			t.Errorf("Flags(%#x).String() = %q, want %q", uint8(f), got, want)
		}
	}
}

func TestReadWriteAllocs(t *testing.T) {
	payload := make([]byte, 16)
	pr, pw := io.Pipe()
	defer pr.Close()
	fw := wire.NewWriter(pw)
	r := wire.NewReader(pr, 0)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := r.ReadFrame(); err != nil {
				return
			}
		}
	}()
	allocs := testing.AllocsPerRun(1000, func() {
		fw.WriteFrame(wire.Header{Method: 1, ID: 7}, payload)
	})
	pw.Close()
	<-done
	if allocs != 0 {
		t.Errorf("WriteFrame allocates %v times per frame, want 0", allocs)
	}
}

type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

type errWriter struct{ err error }

func (e errWriter) Write([]byte) (int, error) { return 0, e.err }

func ExampleReader() {
	var buf bytes.Buffer
	w := wire.NewWriter(&buf)
	w.WriteFrame(wire.Header{Method: 1, ID: 1}, []byte{0xa2, 'h', 'i'})
	r := wire.NewReader(&buf, 0)
	f, _ := r.ReadFrame()
	fmt.Printf("method %d, request %d, payload %x\n", f.Method, f.ID, f.Payload)
	// Output: method 1, request 1, payload a26869
}

// TestInterruptedRead: a read that fails because a deadline passed loses
// nothing; the next ReadFrame continues the same frame. Frames are cut at
// every interesting place: inside the header, inside a small payload, inside
// a large one.
func TestInterruptedRead(t *testing.T) {
	small := bytes.Repeat([]byte{7}, 100)
	large := bytes.Repeat([]byte{9}, 200<<10)
	var stream bytes.Buffer
	w := wire.NewWriter(&stream)
	w.WriteFrame(wire.Header{Method: 1, ID: 1}, small)
	w.WriteFrame(wire.Header{Method: 2, ID: 2}, large)
	w.WriteFrame(wire.Header{Method: 3, ID: 3}, nil)
	data := stream.Bytes()
	cuts := []int{5, wire.HeaderSize + 50, 2*wire.HeaderSize + 100 + 70<<10, 2*wire.HeaderSize + 100 + 150<<10, len(data) - 3}

	a, b := transport.Pipe()
	defer a.Close()
	defer b.Close()
	r := wire.NewReader(b, 0)
	var got []wire.Frame
	prev := 0
	for _, cut := range append(cuts, len(data)) {
		if _, err := a.Write(data[prev:cut]); err != nil {
			t.Fatal(err)
		}
		prev = cut
		for {
			b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			f, err := r.ReadFrame()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break // wait for the next piece
			}
			if err != nil {
				t.Fatalf("after %d bytes: %v", cut, err)
			}
			f.Payload = bytes.Clone(f.Payload)
			got = append(got, f)
		}
	}
	want := []struct {
		id      uint32
		payload []byte
	}{{1, small}, {2, large}, {3, nil}}
	if len(got) != len(want) {
		t.Fatalf("got %d frames, want %d", len(got), len(want))
	}
	for i, f := range got {
		if f.ID != want[i].id || !bytes.Equal(f.Payload, want[i].payload) {
			t.Errorf("frame %d: id %d, %d bytes; want id %d, %d bytes", i, f.ID, len(f.Payload), want[i].id, len(want[i].payload))
		}
	}
}

func TestHasFrame(t *testing.T) {
	var stream bytes.Buffer
	w := wire.NewWriter(&stream)
	w.WriteFrame(wire.Header{Method: 1, ID: 1}, []byte("abc"))
	w.WriteFrame(wire.Header{Method: 1, ID: 2}, make([]byte, 100<<10)) // larger than the buffer
	data := stream.Bytes()
	a, b := transport.Pipe()
	defer a.Close()
	defer b.Close()
	r := wire.NewReader(b, 0)
	if r.HasFrame() {
		t.Fatal("HasFrame = true with nothing buffered")
	}
	a.Write(data[:wire.HeaderSize+3+5]) // frame 1 and part of frame 2's header
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	if r.HasFrame() {
		t.Error("HasFrame = true with a partial header buffered")
	}
	a.Write(data[wire.HeaderSize+3+5:])
	if _, err := r.ReadFrame(); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if _, err := r.ReadFrame(); err != io.EOF {
		t.Fatalf("got %v, want io.EOF", err)
	}
	if !r.HasFrame() {
		t.Error("HasFrame = false after an error; ReadFrame returns at once")
	}
}

func TestQueueFlush(t *testing.T) {
	var out bytes.Buffer
	cw := &countingWriter{w: &out}
	w := wire.NewWriter(cw)
	for i := range 10 {
		if err := w.Queue(wire.Header{Method: 1, ID: uint32(i)}, []byte("reply")); err != nil {
			t.Fatal(err)
		}
	}
	if cw.writes != 0 {
		t.Fatalf("Queue wrote %d times, want 0", cw.writes)
	}
	if err := w.WriteFrame(wire.Header{Method: 1, ID: 10}, []byte("last")); err != nil {
		t.Fatal(err)
	}
	if cw.writes != 1 {
		t.Errorf("11 frames took %d writes, want 1", cw.writes)
	}
	w.Queue(wire.Header{Method: 1, ID: 11}, []byte("x"))
	if err := w.Flush(); err != nil || cw.writes != 2 {
		t.Errorf("Flush: %v, %d writes; want nil, 2", err, cw.writes)
	}
	if err := w.Flush(); err != nil || cw.writes != 2 {
		t.Errorf("empty Flush: %v, %d writes; want nil, 2", err, cw.writes)
	}
	r := wire.NewReader(&out, 0)
	for i := range 12 {
		f, err := r.ReadFrame()
		if err != nil || f.ID != uint32(i) {
			t.Fatalf("frame %d: id %d, %v", i, f.ID, err)
		}
	}
}

type countingWriter struct {
	w      io.Writer
	writes int
}

func (c *countingWriter) Write(p []byte) (int, error) { c.writes++; return c.w.Write(p) }

func TestWriteFrameVec(t *testing.T) {
	big := bytes.Repeat([]byte{3}, 40<<10)
	parts := [][]byte{[]byte("head"), big, []byte("mid"), big[:10], nil, big}
	var out bytes.Buffer
	w := wire.NewWriter(&out)
	if err := w.WriteFrameVec(wire.Header{Method: 9, ID: 4}, parts); err != nil {
		t.Fatal(err)
	}
	w.WriteFrame(wire.Header{Method: 9, ID: 5}, []byte("next"))
	r := wire.NewReader(&out, 0)
	f, err := r.ReadFrame()
	if err != nil || f.ID != 4 || !bytes.Equal(f.Payload, bytes.Join(parts, nil)) {
		t.Fatalf("vectored frame: id %d, %d bytes, %v", f.ID, len(f.Payload), err)
	}
	if f, err := r.ReadFrame(); err != nil || string(f.Payload) != "next" {
		t.Fatalf("frame after it: %q, %v", f.Payload, err)
	}
	gib := make([]byte, 1<<30) // never touched: no memory is used
	if err := w.WriteFrameVec(wire.Header{Method: 1}, [][]byte{gib, gib}); !errors.Is(err, wire.ErrPayloadOverflow) {
		t.Errorf("2 GiB of parts: %v, want ErrPayloadOverflow", err)
	}
}

// TestSetDestAfter: a large payload's first bytes decide where the rest
// goes; they are dropped, and the rest lands in the caller's slice, also
// when the read is interrupted before those first bytes arrive.
func TestSetDestAfter(t *testing.T) {
	payload := append([]byte{0xc6, 0, 1, 0, 0}, bytes.Repeat([]byte{5}, 1<<16)...) // a msgpack bin 32 header, then 64 KiB
	var stream bytes.Buffer
	wire.NewWriter(&stream).WriteFrame(wire.Header{Method: 1, ID: 1, Flags: wire.FlagResponse}, payload)
	data := stream.Bytes()
	dst := make([]byte, 1<<16)
	var seen []byte
	a, b := transport.Pipe()
	defer a.Close()
	defer b.Close()
	r := wire.NewReader(b, 0)
	r.SetDestAfter(func(h wire.Header, head []byte) (int, []byte) {
		seen = bytes.Clone(head)
		return 5, dst
	})
	a.Write(data[:wire.HeaderSize+2]) // the frame header and 2 payload bytes
	b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := r.ReadFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want a deadline error", err)
	}
	b.SetReadDeadline(time.Time{})
	a.Write(data[wire.HeaderSize+2:])
	f, err := r.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != wire.MaxHead || !bytes.Equal(seen, payload[:wire.MaxHead]) {
		t.Errorf("head = %x, want %x", seen, payload[:wire.MaxHead])
	}
	if f.Skipped != 5 || !f.Owned || unsafe.SliceData(f.Payload) != unsafe.SliceData(dst) || !bytes.Equal(f.Payload, payload[5:]) {
		t.Errorf("frame: skipped %d, owned %v, %d bytes in the caller's slice: %v", f.Skipped, f.Owned, len(f.Payload), unsafe.SliceData(f.Payload) == unsafe.SliceData(dst))
	}
}

// TestReaderSizeGrows reads frames of every size through a Reader that
// starts with a tiny buffer and a reader that returns one byte at a time.
func TestReaderSizeGrows(t *testing.T) {
	var buf bytes.Buffer
	w := wire.NewWriter(&buf)
	var want [][]byte
	for _, n := range []int{0, 1, 5, 100, 4 << 10, 64 << 10, 64<<10 + 1, 200 << 10, 3} {
		p := bytes.Repeat([]byte{byte(n)}, n)
		want = append(want, p)
		if err := w.WriteFrame(wire.Header{Method: 1, ID: uint32(n)}, p); err != nil {
			t.Fatal(err)
		}
	}
	for _, src := range []struct {
		name string
		r    func() io.Reader
	}{
		{"bulk", func() io.Reader { return bytes.NewReader(buf.Bytes()) }},
		{"one-byte", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(buf.Bytes())) }},
	} {
		t.Run(src.name, func(t *testing.T) {
			r := wire.NewReaderSize(src.r(), 1<<20, 16)
			for i, p := range want {
				f, err := r.ReadFrame()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if !bytes.Equal(f.Payload, p) || int(f.ID) != len(p) {
					t.Fatalf("frame %d: got id %d and %d bytes, want %d", i, f.ID, len(f.Payload), len(p))
				}
			}
			if _, err := r.ReadFrame(); err != io.EOF {
				t.Fatalf("after the last frame: got %v, want io.EOF", err)
			}
		})
	}
}
