package codec_test

import (
	"bytes"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/procxy/procxy/rpc/codec"
)

func TestMsgpackDecodeErrors(t *testing.T) {
	deep := strings.Repeat("91", 1001) + "c0"
	tests := []struct {
		name, hex, want string
	}{
		{"D04-empty", "", "empty payload"},
		{"trailing", "0102", "1 trailing bytes"},
		{"trailing-after-map", "80c0", "1 trailing bytes"},
		{"never-used-c1", "c1", "invalid code 0xc1"},
		{"truncated-uint16", "cd01", "unexpected end of data"},
		{"truncated-str", "a561", "string of length 5"},
		{"truncated-array", "9201", "array of length 2 at offset 0 exceeds the 1 bytes left"},
		{"truncated-array-element", "92cd01", "unexpected end of data"},
		{"truncated-map-value", "81a161", "unexpected end of data"},
		{"truncated-ext-type", "c705", "unexpected end of data"},
		{"str32-4GiB", "dbffffffff", "string of length 4294967295"},
		{"bin32-4GiB", "c6ffffffff", "binary of length 4294967295"},
		{"array32-4G", "ddffffffff", "array of length 4294967295"},
		{"map32-4G", "dfffffffff", "map of length 4294967295"},
		{"ext32-4GiB", "c9ffffffff05", "extension of length 4294967295"},
		{"array16-short", "dc0003c0c0", "array of length 3"},
		{"nil-key", "81c001", "map key at offset 1"},
		{"bool-key", "81c301", "keys must be strings or integers"},
		{"float-key", "81cb3ff800000000000001", "keys must be strings or integers"},
		{"array-key", "819001", "keys must be strings or integers"},
		{"bin-key", "81c4016101", "keys must be strings or integers"},
		{"timestamp-2-bytes", "d5ff0000", "timestamp extension of 2 bytes"},
		{"timestamp-range", "c70cff00000000" + "7fffffffffffffff", "out of range"},
		{"date-4-bytes", "d60200000000", "4 bytes; want 8"},
		{"date-nan", "d7027ff8000000000000", "NaN is not a valid time"},
		{"date-too-late", "d70243f0000000000000", "not a valid time"},
		{"too-deep", deep, "nesting deeper than 1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			err := codec.Msgpack.Unmarshal(unhex(t, tt.hex), &v)
			if err == nil || !strings.HasPrefix(err.Error(), "codec: msgpack: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Unmarshal(%s) error = %v, want one containing %q", tt.hex, err, tt.want)
			}
			var s struct{ A string }
			if err := codec.Msgpack.Unmarshal(unhex(t, tt.hex), &s); err == nil {
				t.Errorf("Unmarshal(%s) into a struct: got no error", tt.hex)
			}
		})
	}
}

// A few bytes claiming a huge string, array or map must fail before any
// large allocation (the bare library allocates []any of the claimed length).
func TestMsgpackHugeLengthsDoNotAllocate(t *testing.T) {
	for _, h := range []string{"dbffffffff", "ddffffffff", "dfffffffff", "c6ffffffff", "c9ffffffff05", "dd0fffffff" + "c0"} {
		data := unhex(t, h)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for range 10 {
			var v any
			if err := codec.Msgpack.Unmarshal(data, &v); err == nil {
				t.Fatalf("Unmarshal(%s): got no error", h)
			}
			var s []string
			if err := codec.Msgpack.Unmarshal(data, &s); err == nil {
				t.Fatalf("Unmarshal(%s) into []string: got no error", h)
			}
		}
		runtime.ReadMemStats(&after)
		if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
			t.Errorf("Unmarshal(%s) x20 allocated %d bytes, want < 1 MiB", h, got)
		}
	}
}

func TestMsgpackDecodeTargets(t *testing.T) {
	t.Run("bytes-from-ext1-and-bin", func(t *testing.T) {
		for _, h := range []string{"c4020102", "d50101 02", "c7020101 02"} {
			var b []byte
			var a [2]byte
			if err := codec.Msgpack.Unmarshal(unhex(t, h), &b); err != nil || !bytes.Equal(b, []byte{1, 2}) {
				t.Errorf("Unmarshal(%s) into []byte = %x, %v; want 0102", h, b, err)
			}
			if err := codec.Msgpack.Unmarshal(unhex(t, h), &a); err != nil || a != [2]byte{1, 2} {
				t.Errorf("Unmarshal(%s) into [2]byte = %x, %v; want 0102", h, a, err)
			}
		}
	})
	t.Run("time-forms-in-utc", func(t *testing.T) {
		type wrap struct {
			T  time.Time            `msgpack:"t"`
			P  *time.Time           `msgpack:"p"`
			A  any                  `msgpack:"a"`
			S  []any                `msgpack:"s"`
			M  map[string]time.Time `msgpack:"m"`
			MA map[string]any       `msgpack:"ma"`
		}
		want := ms(1700000000123)
		for _, ts := range []string{"d7ff1d5353006553f100", "d7024278bcfe5687b000", "c70cff" + "0754d4c0" + "000000006553f100"} {
			data := unhex(t, "86a174"+ts+"a170"+ts+"a161"+ts+"a17391"+ts+"a16d81a178"+ts+"a26d6181a178"+ts)
			var w wrap
			if err := codec.Msgpack.Unmarshal(data, &w); err != nil {
				t.Fatalf("Unmarshal(%x): %v", data, err)
			}
			for name, got := range map[string]any{"t": w.T, "p": *w.P, "a": w.A, "s": w.S[0], "m": w.M["x"], "ma": w.MA["x"]} {
				if tm, ok := got.(time.Time); !ok || !tm.Equal(want) || tm.Location() != time.UTC {
					t.Errorf("field %s of %s = %v, want %v in UTC", name, ts, got, want)
				}
			}
			var tm time.Time
			if err := codec.Msgpack.Unmarshal(unhex(t, ts), &tm); err != nil || !tm.Equal(want) || tm.Location() != time.UTC {
				t.Errorf("Unmarshal(%s) into time.Time = %v, %v; want %v in UTC", ts, tm, err, want)
			}
		}
	})
	t.Run("any-fields-follow-loose-rules", func(t *testing.T) {
		var w struct {
			A, F, B, M any
			S          []any
		}
		// {A: 5, F: float32 1.5, B: bin 01, M: {7: ext5}, S: [cc ff]}
		data := unhex(t, "85 a141 05 a146 ca3fc00000 a142 c40101 a14d 8107d4050a a153 91ccff")
		if err := codec.Msgpack.Unmarshal(data, &w); err != nil {
			t.Fatal(err)
		}
		if w.A != int64(5) || w.F != 1.5 || !bytes.Equal(w.B.([]byte), []byte{1}) || w.S[0] != int64(255) {
			t.Errorf("got A=%#v F=%#v B=%#v S=%#v; want int64 5, float64 1.5, []byte{1}, int64 255", w.A, w.F, w.B, w.S)
		}
		if m, _ := w.M.(map[string]any); !equalValue(m["7"], codec.Ext{Type: 5, Data: []byte{10}}, true) {
			t.Errorf("M = %#v, want map[7:Ext{5, 0a}]", w.M)
		}
	})
	t.Run("ext-field", func(t *testing.T) {
		var w struct{ X, Y codec.Ext }
		if err := codec.Msgpack.Unmarshal(unhex(t, "82 a158 c7030a010203 a159 c4017f"), &w); err != nil {
			t.Fatal(err)
		}
		if w.X.Type != 10 || !bytes.Equal(w.X.Data, []byte{1, 2, 3}) || w.Y.Type != 1 || !bytes.Equal(w.Y.Data, []byte{0x7f}) {
			t.Errorf("got %+v, want X={10 010203} Y={1 7f}", w)
		}
	})
	t.Run("map-and-slice-targets", func(t *testing.T) {
		var m map[string]any
		if err := codec.Msgpack.Unmarshal(unhex(t, "82 01 c3 a162 c2"), &m); err != nil || m["1"] != true || m["b"] != false {
			t.Errorf("into map[string]any = %v, %v; want map[1:true b:false]", m, err)
		}
		var s []any
		if err := codec.Msgpack.Unmarshal(unhex(t, "92 c0 a0"), &s); err != nil || len(s) != 2 || s[0] != nil || s[1] != "" {
			t.Errorf("into []any = %#v, %v; want [nil \"\"]", s, err)
		}
		if err := codec.Msgpack.Unmarshal(unhex(t, "a0"), &m); err == nil {
			t.Errorf("string into map[string]any: got no error")
		}
	})
	t.Run("bad-targets", func(t *testing.T) {
		var x int
		for _, target := range []any{nil, x, (*any)(nil), (*int)(nil)} {
			if err := codec.Msgpack.Unmarshal([]byte{1}, target); err == nil {
				t.Errorf("Unmarshal into %T: got no error", target)
			}
		}
		if err := codec.Msgpack.Unmarshal(unhex(t, "a178"), &x); err == nil {
			t.Errorf("string into *int: got no error")
		}
	})
	t.Run("library-panic-becomes-error", func(t *testing.T) {
		// {f: {}, f: {}}: the library panics filling an interface field
		// that already holds a map (found by FuzzMsgpack).
		var w struct {
			F any `msgpack:"f"`
		}
		err := codec.Msgpack.Unmarshal(unhex(t, "82a16680a16680"), &w)
		if err == nil || !strings.Contains(err.Error(), "panic") {
			t.Errorf("Unmarshal = %v, want an error reporting the library panic", err)
		}
	})
	t.Run("does-not-retain-data", func(t *testing.T) {
		data := unhex(t, "83 a162 c4020102 a173 a26869 a165 d4050a")
		var v any
		var w struct {
			B []byte
			S string
			E codec.Ext
		}
		if err := codec.Msgpack.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		if err := codec.Msgpack.Unmarshal(bytes.ReplaceAll(data, []byte{0xa1, 0x62}, []byte{0xa1, 'B'}), &w); err != nil {
			t.Fatal(err)
		}
		clear(data)
		m := v.(map[string]any)
		if !bytes.Equal(m["b"].([]byte), []byte{1, 2}) || m["s"] != "hi" || m["e"].(codec.Ext).Data[0] != 10 {
			t.Errorf("decoded value changed with the input buffer: %#v", m)
		}
	})
}

func TestMsgpackEncode(t *testing.T) {
	type tagged struct {
		Skip  string `msgpack:"-"`
		Empty string `msgpack:"e,omitempty"`
		N     int8   `msgpack:"n"`
	}
	tests := []struct {
		name string
		in   any
		hex  string
	}{
		{"float-integral", 2.0, "02"},
		{"float-negative-integral", -300.0, "d1fed4"},
		{"float-max-safe", float64(1<<53 - 1), "cf001fffffffffffff"},
		{"float-min-safe", -float64(1<<53 - 1), "d3ffe0000000000001"},
		{"float-below-min-safe", -float64(1 << 53), "cbc340000000000000"},
		{"float-2^63", math.Pow(2, 63), "cb43e0000000000000"},
		{"float-neg-inf", math.Inf(-1), "cbfff0000000000000"},
		{"float32-fraction", float32(0.5), "cb3fe0000000000000"},
		{"uint8", uint8(200), "ccc8"},
		{"int64-small", int64(5), "05"},
		{"str8-255", strings.Repeat("a", 255), "d9ff" + strings.Repeat("61", 255)},
		{"str16-256", strings.Repeat("a", 256), "da0100" + strings.Repeat("61", 256)},
		{"bytes-nil", []byte(nil), "c0"},
		{"bytes-fixext16", make([]byte, 16), "d801" + strings.Repeat("00", 16)},
		{"bytes-ext8-3", []byte{1, 2, 3}, "c70301010203"},
		{"bytes-ext16", make([]byte, 256), "c8010001" + strings.Repeat("00", 256)},
		{"byte-array", [2]byte{1, 2}, "d5010102"},
		{"time-sub-ms-truncated", time.Unix(1700000000, 123456789), "d7ff1d5353006553f100"},
		{"time-pre-epoch-sub-ms", time.Unix(-1, 999999999), "c70cff3b8b87c0ffffffffffffffff"},
		{"time-zero", time.Time{}, "c70cff00000000fffffff1886e0900"},
		{"time-2^34", time.Unix(1<<34, 0), "c70cff000000000000000400000000"},
		{"time-ptr", func() *time.Time { tm := ms(0); return &tm }(), "d6ff00000000"},
		{"tags", tagged{Skip: "x", N: -5}, "81a16efb"},
		{"ext", codec.Ext{Type: -5, Data: []byte{1, 2, 3}}, "c703fb010203"},
		{"any-slice", []any{nil, 1.5, "x", []byte{9}}, "94c0cb3ff8000000000000a178d40109"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := codec.Msgpack.Append(nil, tt.in)
			if want := strings.ReplaceAll(tt.hex, " ", ""); err != nil || hexs(got) != want {
				t.Errorf("Append(%#v) = %s, %v; want %s", tt.in, hexs(got), err, want)
			}
		})
	}
}

func TestMsgpackEncodeErrors(t *testing.T) {
	bad := []any{make(chan int), func() {}, complex(1, 2), map[bool]int{true: 1}, map[float64]int{1.5: 1},
		map[string]any{"t": codec.Ext{Type: -1, Data: []byte{1}}}}
	for _, v := range bad {
		dst := []byte("keep")
		got, err := codec.Msgpack.Append(dst, v)
		if err == nil || !strings.HasPrefix(err.Error(), "codec: msgpack: encode") {
			t.Errorf("Append(%T) error = %v, want a codec: msgpack: encode error", v, err)
		}
		if string(got) != "keep" {
			t.Errorf("Append(%T) returned %q, want dst unchanged", v, got)
		}
	}
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	s := make([]byte, 0, 2*len(b))
	for _, c := range b {
		s = append(s, digits[c>>4], digits[c&15])
	}
	return string(s)
}
