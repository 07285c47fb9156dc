package codec_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/procxy/procxy/rpc/codec"
)

// fuzzTarget gives the library's typed decoding something to chew on.
type fuzzTarget struct {
	A int64          `msgpack:"a"`
	B string         `msgpack:"b"`
	C []byte         `msgpack:"c"`
	D float64        `msgpack:"d"`
	E time.Time      `msgpack:"e"`
	F any            `msgpack:"f"`
	G map[string]any `msgpack:"g"`
	H []int          `msgpack:"h"`
	I *fuzzTarget    `msgpack:"i"`
	J codec.Ext      `msgpack:"j"`
	K map[int]string `msgpack:"k"`
	L [2]uint8       `msgpack:"l"`
	M float32        `msgpack:"m"`
	N []any          `msgpack:"n"`
}

func FuzzMsgpack(f *testing.F) {
	for _, v := range vectors {
		f.Add(unhex(f, v.hex))
	}
	seeds := []any{
		fuzzTarget{A: -7, B: "b", C: []byte{1}, D: 0.25, E: ms(1), F: []any{1, "x"}, G: map[string]any{"k": nil},
			H: []int{3}, I: &fuzzTarget{B: "in"}, J: codec.Ext{Type: 9, Data: []byte{1, 2}}, K: map[int]string{4: "v"}, M: 2.5},
		map[string]any{"deep": []any{[]any{map[string]any{"t": ms(-62135596800000)}}}},
		[]any{uint64(1 << 63), int64(-1 << 63), 1e300, -0.5, []byte{}, strings.Repeat("z", 300)},
	}
	for _, s := range seeds {
		b, err := codec.Msgpack.Append(nil, s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// Exact times (MsgpackGo) and numbers that do not fit a nested field.
	exact := []any{
		fuzzTarget{E: time.Date(2024, 5, 17, 13, 45, 10, 123456789, time.FixedZone("CEST", 7200)), F: time.Unix(1, 1).UTC()},
		map[string]any{"l": []int{1, 300}, "h": []any{1.5, -1}, "a": uint64(1 << 63)},
	}
	for _, s := range exact {
		b, err := codec.MsgpackGo.Append(nil, s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, h := range []string{"", "c1", "0102", "dbffffffff", "81c001", "d7027ff8000000000000", "d7ffffffffffffffffff"} {
		f.Add(unhex(f, h))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var typed fuzzTarget
		_ = codec.Msgpack.Unmarshal(data, &typed) // must not panic
		var v1 any
		if err := codec.Msgpack.Unmarshal(data, &v1); err != nil {
			return
		}
		b1, err := codec.Msgpack.Append(nil, v1)
		if err != nil {
			t.Fatalf("Append(%#v) of a decoded value: %v", v1, err)
		}
		var v2 any
		if err := codec.Msgpack.Unmarshal(b1, &v2); err != nil {
			t.Fatalf("Unmarshal(%x) of our own output: %v", b1, err)
		}
		if !equalValue(v1, v2, false) {
			t.Fatalf("round trip changed the value:\n%#v\nbecame\n%#v", v1, v2)
		}
		// One encode step normalizes (numbers, sub-millisecond times); after
		// it the value must be a fixed point.
		b2, err := codec.Msgpack.Append(nil, v2)
		if err != nil {
			t.Fatalf("Append(%#v): %v", v2, err)
		}
		var v3 any
		if err := codec.Msgpack.Unmarshal(b2, &v3); err != nil || !equalValue(v2, v3, true) {
			t.Fatalf("second round trip: %#v became %#v (%v)", v2, v3, err)
		}
	})
}

func FuzzJSON(f *testing.F) {
	for _, s := range []string{`null`, `true`, `1.5e300`, `"a\u00e9\ud83d\ude00"`, `[1,[2,{"a":null}]]`,
		`{"name":"x","tags":["<&>"],"n":-0}`, `  {"a" : 1 } `, `1 2`, `{`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var v1 any
		if err := codec.JSON.Unmarshal(data, &v1); err != nil {
			return
		}
		b, err := codec.JSON.Append(nil, v1)
		if err != nil {
			t.Fatalf("Append(%#v): %v", v1, err)
		}
		if bytes.HasSuffix(b, []byte("\n")) {
			t.Fatalf("Append(%#v) = %q ends in a newline", v1, b)
		}
		var v2 any
		if err := codec.JSON.Unmarshal(b, &v2); err != nil || !reflect.DeepEqual(v1, v2) {
			t.Fatalf("round trip of %q: %#v became %#v (%v)", b, v1, v2, err)
		}
	})
}

func FuzzRaw(f *testing.F) {
	for _, s := range []string{"", "x", "\x00\xff", "\xc0"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var b []byte
		var s string
		var a any
		for _, target := range []any{&b, &s, &a} {
			if err := codec.Raw.Unmarshal(data, target); err != nil {
				t.Fatalf("Unmarshal into %T: %v", target, err)
			}
		}
		for _, v := range []any{b, s, a, &b} {
			got, err := codec.Raw.Append([]byte{0xee}, v)
			if err != nil || !bytes.Equal(got[1:], data) || got[0] != 0xee {
				t.Fatalf("Append(%T) = %x, %v; want ee%x", v, got, err, data)
			}
		}
	})
}
