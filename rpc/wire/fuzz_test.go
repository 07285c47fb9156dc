package wire_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/procxy/procxy/rpc/wire"
)

// FuzzReader feeds arbitrary bytes to the frame reader. Every frame it
// accepts must be valid and must re-encode to exactly the bytes it came from;
// every failure must be one of the documented errors.
func FuzzReader(f *testing.F) {
	for _, v := range frameVectors {
		f.Add(unhex(v))
	}
	for _, v := range invalidHeaders {
		f.Add(unhex(v))
	}
	f.Add(append(unhex(frameVectors["F01"]), unhex(frameVectors["F09"])...))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := wire.NewReader(bytes.NewReader(data), 1<<16)
		var out bytes.Buffer
		w := wire.NewWriter(&out)
		for {
			fr, err := r.ReadFrame()
			if err != nil {
				var he *wire.HeaderError
				if err != io.EOF && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.As(err, &he) {
					t.Fatalf("unexpected error type: %v", err)
				}
				break
			}
			if err := fr.Validate(1 << 16); err != nil {
				t.Fatalf("accepted an invalid header %+v: %v", fr.Header, err)
			}
			if int(fr.Len) != len(fr.Payload) {
				t.Fatalf("header says %d bytes, payload has %d", fr.Len, len(fr.Payload))
			}
			if err := w.WriteFrame(fr.Header, fr.Payload); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.HasPrefix(data, out.Bytes()) {
			t.Fatalf("re-encoded frames differ from the input:\n got %x\nfrom %x", out.Bytes(), data)
		}
	})
}
