package worker_test

import (
	"strings"
	"testing"

	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/worker"
)

// exchange is one request written by a hand-made parent and the frames the
// worker must answer with, as "header payload" hex (see peer.frame).
type exchange struct {
	name    string
	request string   // hex, spaces ignored
	want    []string // frames in order
}

// TestReplies checks every reply kind byte for byte against the vectors of
// §11.2/§11.7 (ids of the test service match them): result 0x03, ack 0x23,
// chunk 0x0B, end 0x1B, errors 0x07 and 0x0F with msgpack payloads, raw
// results, events 0x01 with request id 0, the unknown-method error, and
// request ids echoed as opaque uint32.
func TestReplies(t *testing.T) {
	h, _ := startService(t, worker.Options{})
	p := h.dial(nil)
	for _, ex := range []exchange{
		{"F01 echo → F02 result", "000100000000010000000e 83a16101a162a178a16393010203",
			[]string{"000103000000010000000e 83a16101a162a178a16393010203"}},
		{"F16 request id 0xFFFFFFFF → F15", "000100ffffffff00000005 a477726170",
			[]string{"000103ffffffff00000005 a477726170"}},
		{"generate {n:2} → F08 chunks, F09 end", "0002000000000200000004 81a16e02",
			[]string{"00020b0000000200000004 81a16900", "00020b0000000200000004 81a16901", "00021b0000000200000000 "}},
		{"zero-chunk stream ends cleanly", "0002000000001000000004 81a16e00",
			[]string{"00021b0000001000000000 "}},
		{"ack with data → F06", "0003000000000300000001 c0",
			[]string{"0003230000000300000009 81a6717565756564c3"}},
		// §6.5/§13.4: c0, not the reference's empty payload (F07), which the
		// reference parent cannot decode.
		{"ack without data → c0", "0004000000000400000001 c0",
			[]string{"0004230000000400000001 c0"}},
		{"F17 raw request → raw result", "0006000000000a00000004 deadbeef",
			[]string{"0006030000000a00000004 deadbeef"}},
		{"raw empty payload", "0006000000000b00000000",
			[]string{"0006030000000b00000000 "}},
		{"error object → F04", "0008000000000700000001 c0",
			[]string{"000807000000070000001e 82a76d657373616765a962616420696e707574a4636f6465a5455f424144"}},
		// {message: "stream broke"}; the published child sends the bare string (F10).
		{"stream error → 0x0F", "0009000000000800000001 c0",
			[]string{"00090b0000000800000001 00", "00090f0000000800000016 81a76d657373616765ac73747265616d2062726f6b65"}},
		{"event then result nil → F11, F18", "000a000000000900000001 c0",
			[]string{"000101000000000000000a 81a770657263656e7432", "000a030000000900000001 c0"}},
		{"unknown method 99 → F05", "0063000000000500000001 c0",
			[]string{"0063070000000500000016 b5556e6b6e6f776e206d6574686f642049443a203939"}},
		// The reference child answers an unknown id even with request id 0.
		{"unknown method, request id 0", "0063000000000000000001 c0",
			[]string{"0063070000000000000016 b5556e6b6e6f776e206d6574686f642049443a203939"}},
		// §11.7: a stray AUTH frame on an adopted connection is ignored.
		{"stray AUTH ignored", "fffe000000000000000001 78  0001000000000d00000001 01",
			[]string{"0001030000000d00000001 01"}},
		{"M11 dates and buffers round-trip", "0001000000001100000027 83a763726561746564d6ff65a50928a77061796c6f6164c70301010203a46e616d65a474657374",
			[]string{"0001030000001100000027 83a763726561746564d6ff65a50928a77061796c6f6164c70301010203a46e616d65a474657374"}},
		{"D01 date ext 2 accepted, answered as timestamp (M08)", "000100000000120000000a d7024278bcfe5687b000",
			[]string{"000103000000120000000a d7ff1d5353006553f100"}},
	} {
		p.writeHex(ex.request)
		for i, want := range ex.want {
			if got := p.frame(); got != want {
				t.Errorf("%s: frame %d = %s, want %s", ex.name, i, got, want)
			}
		}
	}
}

// TestErrorPayloads: handler errors are msgpack maps whose message is what
// the Node parent shows — also for raw-codec methods (§6.7, §13.2) — and a
// panic is an error response, not a crash.
func TestErrorPayloads(t *testing.T) {
	h, _ := startService(t, worker.Options{})
	p := h.dial(nil)
	for _, tc := range []struct {
		name, request, header, message string
	}{
		{"fail", "0007000000000600000001 c0", "00070700000006", "boom"},
		{"raw method", "000c000000000c00000001 ff", "000c070000000c", "raw boom"},
		{"panic", "000d000000000d00000001 c0", "000d070000000d", "oops"},
	} {
		p.writeHex(tc.request)
		hdr, payload, _ := strings.Cut(p.frame(), " ")
		if !strings.HasPrefix(hdr, tc.header) {
			t.Errorf("%s: header %s, want %s…", tc.name, hdr, tc.header)
		}
		var m map[string]any
		if err := codec.Msgpack.Unmarshal(unhex(t, payload), &m); err != nil || m["message"] != tc.message {
			t.Errorf("%s: error payload %s decodes to %v, %v; want message %q", tc.name, payload, m, err, tc.message)
		}
	}
}

// TestBadPayload: an undecodable request payload is answered with an error
// frame (0x0F for a stream method) and the worker keeps serving; the
// reference child crashes instead (§7.2.6, §13.11).
func TestBadPayload(t *testing.T) {
	h, _ := startService(t, worker.Options{})
	p := h.dial(nil)
	for _, tc := range []struct{ name, request, header string }{
		{"invalid byte c1", "0001000000001400000001 c1", "00010700000014"},
		{"empty msgpack payload", "0001000000001500000000", "00010700000015"},
		{"trailing bytes", "0001000000001600000002 0102", "00010700000016"},
		{"wrong type for a stream", "0002000000001700000002 a178", "00020f00000017"},
	} {
		p.writeHex(tc.request)
		hdr, payload, _ := strings.Cut(p.frame(), " ")
		var m map[string]any
		err := codec.Msgpack.Unmarshal(unhex(t, payload), &m)
		msg, _ := m["message"].(string)
		if !strings.HasPrefix(hdr, tc.header) || err != nil || !strings.Contains(msg, "cannot decode") {
			t.Errorf("%s: got %s %s (%v), want an error frame %s… saying it cannot decode", tc.name, hdr, payload, m, tc.header)
		}
	}
	p.writeHex("0001000000001800000001 2a")
	if got, want := p.frame(), "0001030000001800000001 2a"; got != want {
		t.Errorf("after bad payloads: echo = %s, want %s", got, want)
	}
}

// TestNone: a fire-and-forget request (request id 0) runs its handler and
// gets nothing back; the event it emits arrives with flags 0x01 and
// request id 0 (§11.7).
func TestNone(t *testing.T) {
	h, s := startService(t, worker.Options{})
	p := h.dial(nil)
	p.writeHex("0005000000000000000006 a568656c6c6f") // log "hello"
	if got := recv(t, s.logged, "the log handler"); got != "hello" {
		t.Errorf("log handler got %q, want hello", got)
	}
	if got, want := p.frame(), "000201000000000000000e 81a66c6f67676564a568656c6c6f"; got != want {
		t.Errorf("event = %s, want %s", got, want)
	}
	p.writeHex("0001000000001900000001 07")
	if got, want := p.frame(), "0001030000001900000001 07"; got != want {
		t.Errorf("next frame = %s, want the echo reply %s (nothing for the none call)", got, want)
	}
}

// TestAbort: an abort frame cancels the handler's context and sends nothing
// by itself; unknown ids are ignored.
func TestAbort(t *testing.T) {
	h, s := startService(t, worker.Options{})
	p := h.dial(nil)
	p.writeHex("000b000000000c00000001 0c") // slow(12), request id 12
	p.writeHex("ffff000000006300000000")    // abort of an unknown id: ignored
	p.writeHex("ffff000000000c00000000")    // F12-style abort of id 12
	if got := recv(t, s.aborted, "slow to see its context cancelled"); got != 12 {
		t.Errorf("aborted handler had input %d, want 12", got)
	}
	p.writeHex("0001000000000d00000001 01")
	if got, want := p.frame(), "0001030000000d00000001 01"; got != want {
		t.Errorf("after the abort: %s, want the echo reply %s", got, want)
	}
}
