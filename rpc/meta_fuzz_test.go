package rpc_test

import (
	"bytes"
	"maps"
	"testing"

	"github.com/procxy/procxy/observe"
	"github.com/procxy/procxy/rpc"
)

// FuzzMetadata decodes arbitrary request metadata: it never panics, and
// what decodes encodes back to the same metadata.
func FuzzMetadata(f *testing.F) {
	f.Add(rpc.AppendMeta(nil, observe.Header{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "a=b"}))
	f.Add(rpc.AppendMeta(nil, observe.Header{}))
	f.Add(append(rpc.AppendMeta(nil, observe.Header{"k": "v"}), 0x93, 1, 2, 3))
	f.Add([]byte{0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, p []byte) {
		h, rest, err := rpc.CutMeta(p, true)
		if err != nil {
			return
		}
		if !bytes.HasSuffix(p, rest) {
			t.Fatalf("rest %x is not the end of %x", rest, p)
		}
		again, rest2, err := rpc.CutMeta(append(rpc.AppendMeta(nil, h), rest...), true)
		if err != nil || !maps.Equal(h, again) || !bytes.Equal(rest, rest2) {
			t.Fatalf("round trip of %v: %v, %x, %v", h, again, rest2, err)
		}
	})
}
