package codec_test

import (
	"encoding/hex"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/procxy/procxy/rpc/codec"
)

// Go shapes for the ordered JavaScript objects of §11.3: struct fields keep
// their order, maps would not.
type (
	m01 struct {
		A int    `msgpack:"a"`
		B string `msgpack:"b"`
		C []int  `msgpack:"c"`
	}
	m02 struct {
		Data []byte `msgpack:"data"`
	}
	m11 struct {
		Created time.Time `msgpack:"created"`
		Payload []byte    `msgpack:"payload"`
		Name    string    `msgpack:"name"`
	}
	s35 struct {
		K2  int `msgpack:"2"`
		K10 int `msgpack:"10"`
		B   int `msgpack:"b"`
		A   int `msgpack:"a"`
	}
	s36 struct {
		K any `msgpack:"k"`
	}
	s39User struct {
		ID   int      `msgpack:"id"`
		Tags []string `msgpack:"tags"`
	}
	s39 struct {
		User s39User `msgpack:"user"`
		OK   bool    `msgpack:"ok"`
	}
)

func ms(n int64) time.Time { return time.UnixMilli(n).UTC() }

// vector is one row of §11.3. in is the Go value that must encode to hex
// (skipped when decodeOnly); loose is what decoding into any must yield;
// decoding into a new value of in's type must give in back, or typed when
// set (the target then has typed's type).
type vector struct {
	name       string
	hex        string
	in         any
	loose      any
	decodeOnly bool
	typed      any // expected typed result when it differs from in
}

var (
	aaa31 = strings.Repeat("a", 31)
	aaa32 = strings.Repeat("a", 32)
)

var vectors = []vector{
	{name: "M01", hex: "83a16101a162a178a16393010203", in: m01{1, "x", []int{1, 2, 3}},
		loose: map[string]any{"a": int64(1), "b": "x", "c": []any{int64(1), int64(2), int64(3)}}},
	{name: "M02", hex: "81a464617461d60101020304", in: m02{[]byte{1, 2, 3, 4}},
		loose: map[string]any{"data": []byte{1, 2, 3, 4}}},
	{name: "M03", hex: "c705010001020304", in: []byte{0, 1, 2, 3, 4}, loose: []byte{0, 1, 2, 3, 4}},
	{name: "M04", hex: "c70001", in: []byte{}, loose: []byte{}},
	{name: "M05", hex: "c4020102", in: []byte{1, 2}, loose: []byte{1, 2}, decodeOnly: true},
	{name: "M06", hex: "d6ff65a50928", in: ms(1705314600000), loose: ms(1705314600000)},
	{name: "M07", hex: "d7ff1d535300666d8975", in: ms(1718454645123), loose: ms(1718454645123)},
	{name: "M08", hex: "d7ff1d5353006553f100", in: ms(1700000000123), loose: ms(1700000000123)},
	{name: "M09", hex: "c70cff3b8b87c0ffffffffffffffff", in: ms(-1), loose: ms(-1)},
	{name: "M10", hex: "d6ff00000000", in: ms(0), loose: ms(0)},
	{name: "M11", hex: "83a763726561746564d6ff65a50928a77061796c6f6164c70301010203a46e616d65a474657374",
		in:    m11{ms(1705314600000), []byte{1, 2, 3}, "test"},
		loose: map[string]any{"created": ms(1705314600000), "payload": []byte{1, 2, 3}, "name": "test"}},
	{name: "S01", hex: "c0", in: nil, loose: nil},
	{name: "S02", hex: "c0", in: (*int)(nil), loose: nil, typed: (*int)(nil)},
	{name: "S03", hex: "c3", in: true, loose: true},
	{name: "S04", hex: "c2", in: false, loose: false},
	{name: "S05", hex: "00", in: 0, loose: int64(0)},
	{name: "S06", hex: "7f", in: 127, loose: int64(127)},
	{name: "S07", hex: "cc80", in: 128, loose: int64(128)},
	{name: "S08", hex: "ccff", in: 255, loose: int64(255)},
	{name: "S09", hex: "cd0100", in: 256, loose: int64(256)},
	{name: "S10", hex: "cdffff", in: 65535, loose: int64(65535)},
	{name: "S11", hex: "ce00010000", in: 65536, loose: int64(65536)},
	{name: "S12", hex: "ceffffffff", in: int64(4294967295), loose: int64(4294967295)},
	{name: "S13", hex: "cf0000000100000000", in: int64(4294967296), loose: int64(4294967296)},
	{name: "S14", hex: "cf001fffffffffffff", in: int64(9007199254740991), loose: int64(9007199254740991)},
	{name: "S15", hex: "ff", in: -1, loose: int64(-1)},
	{name: "S16", hex: "e0", in: -32, loose: int64(-32)},
	{name: "S17", hex: "d0df", in: -33, loose: int64(-33)},
	{name: "S18", hex: "d080", in: -128, loose: int64(-128)},
	{name: "S19", hex: "d1ff7f", in: -129, loose: int64(-129)},
	{name: "S20", hex: "d18000", in: -32768, loose: int64(-32768)},
	{name: "S21", hex: "d2ffff7fff", in: -32769, loose: int64(-32769)},
	{name: "S22", hex: "d280000000", in: int64(-2147483648), loose: int64(-2147483648)},
	{name: "S23", hex: "d3ffffffff7fffffff", in: int64(-2147483649), loose: int64(-2147483649)},
	{name: "S24", hex: "cb3ff8000000000000", in: 1.5, loose: 1.5},
	{name: "S25", hex: "00", in: math.Copysign(0, -1), loose: int64(0)},
	{name: "S26", hex: "cb7ff8000000000000", in: math.NaN(), loose: math.NaN()},
	{name: "S27", hex: "cb7ff0000000000000", in: math.Inf(1), loose: math.Inf(1)},
	{name: "S28", hex: "cb4340000000000000", in: 9007199254740992.0, loose: 9007199254740992.0},
	{name: "S29", hex: "cb3fb999999999999a", in: 0.1, loose: 0.1},
	{name: "S30", hex: "a0", in: "", loose: ""},
	{name: "S31", hex: "bf" + strings.Repeat("61", 31), in: aaa31, loose: aaa31},
	{name: "S32", hex: "d920" + strings.Repeat("61", 32), in: aaa32, loose: aaa32},
	{name: "S33", hex: "aa7a61c5bcc3b3c582c487", in: "zażółć", loose: "zażółć"},
	{name: "S34", hex: "dc0010" + strings.Repeat("00", 16), in: make([]int, 16), loose: []any{int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0),
		int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0), int64(0)}, typed: make([]int, 16)},
	{name: "S35", hex: "84a13204a2313003a16201a16102", in: s35{K2: 4, K10: 3, B: 1, A: 2},
		loose: map[string]any{"2": int64(4), "10": int64(3), "b": int64(1), "a": int64(2)}},
	{name: "S36", hex: "81a16bc0", in: s36{}, loose: map[string]any{"k": nil}},
	{name: "S37", hex: "80", in: struct{}{}, loose: map[string]any{}},
	{name: "S39", hex: "82a47573657282a269642aa47461677392a161a162a26f6bc3",
		in:    s39{s39User{42, []string{"a", "b"}}, true},
		loose: map[string]any{"user": map[string]any{"id": int64(42), "tags": []any{"a", "b"}}, "ok": true}},
	// Decode-only rows (§11.3, second table) and values Go adds.
	{name: "D01", hex: "d7024278bcfe5687b000", in: ms(1700000000123), loose: ms(1700000000123), decodeOnly: true},
	{name: "D02", hex: "cf0020000000000001", in: int64(1<<53 + 1), loose: int64(1<<53 + 1)},
	{name: "D03", hex: "d4050a", in: codec.Ext{Type: 5, Data: []byte{10}}, loose: codec.Ext{Type: 5, Data: []byte{10}}},
	{name: "uint64-max", hex: "cfffffffffffffffff", in: uint64(math.MaxUint64), loose: uint64(math.MaxUint64)},
	{name: "int64-min", hex: "d38000000000000000", in: int64(math.MinInt64), loose: int64(math.MinInt64)},
	// float32 goes out as float64; the library cannot decode cb into a
	// float32 (vmihailenco/msgpack#353), hence the float64 target.
	{name: "float32", hex: "cb3ff8000000000000", in: float32(1.5), loose: 1.5, typed: 1.5},
	{name: "float32-integral", hex: "03", in: float32(3), loose: int64(3)},
	{name: "int-key", hex: "81 05 a178", in: map[int]string{5: "x"}, loose: map[string]any{"5": "x"}},
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestMsgpackVectorsEncode(t *testing.T) {
	for _, tt := range vectors {
		if tt.decodeOnly {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			got, err := codec.Msgpack.Append([]byte("prefix"), tt.in)
			if err != nil {
				t.Fatalf("Append(%#v): %v", tt.in, err)
			}
			if want := "prefix" + string(unhex(t, tt.hex)); string(got) != want {
				t.Errorf("Append(%#v) = %x, want %x", tt.in, got[6:], want[6:])
			}
		})
	}
}

func TestMsgpackVectorsDecodeAny(t *testing.T) {
	for _, tt := range vectors {
		t.Run(tt.name, func(t *testing.T) {
			var got any = "sentinel"
			if err := codec.Msgpack.Unmarshal(unhex(t, tt.hex), &got); err != nil {
				t.Fatalf("Unmarshal into any: %v", err)
			}
			if !equalValue(got, tt.loose, true) {
				t.Errorf("Unmarshal into any = %#v (%T), want %#v (%T)", got, got, tt.loose, tt.loose)
			}
		})
	}
}

func TestMsgpackVectorsDecodeTyped(t *testing.T) {
	for _, tt := range vectors {
		if tt.in == nil {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			want := tt.in
			if tt.typed != nil {
				want = tt.typed
			}
			p := reflect.New(reflect.TypeOf(want))
			if err := codec.Msgpack.Unmarshal(unhex(t, tt.hex), p.Interface()); err != nil {
				t.Fatalf("Unmarshal into %T: %v", p.Interface(), err)
			}
			if got := p.Elem().Interface(); !equalTyped(got, want) {
				t.Errorf("Unmarshal into %T = %#v, want %#v", p.Interface(), got, want)
			}
		})
	}
}

// equalTyped is reflect.DeepEqual, except that NaN equals NaN and times
// compare with Equal and must be in UTC.
func equalTyped(a, b any) bool {
	if f, ok := a.(float64); ok && math.IsNaN(f) {
		g, ok := b.(float64)
		return ok && math.IsNaN(g)
	}
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb) && ta.Location() == time.UTC
	}
	return reflect.DeepEqual(a, b)
}

// Every integer vector must decode into every numeric Go type that holds it,
// whatever format JavaScript picked (§7.2.7).
func TestMsgpackNumericTargets(t *testing.T) {
	for _, tt := range vectors {
		want, ok := tt.loose.(int64)
		if !ok || strings.HasPrefix(tt.name, "D") {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			data := unhex(t, tt.hex)
			var i64 int64
			var f64 float64
			if err := codec.Msgpack.Unmarshal(data, &i64); err != nil || i64 != want {
				t.Errorf("into int64: got %d, %v; want %d", i64, err, want)
			}
			if err := codec.Msgpack.Unmarshal(data, &f64); err != nil || f64 != float64(want) {
				t.Errorf("into float64: got %v, %v; want %d", f64, err, want)
			}
			if want >= 0 {
				var u64 uint64
				if err := codec.Msgpack.Unmarshal(data, &u64); err != nil || u64 != uint64(want) {
					t.Errorf("into uint64: got %d, %v; want %d", u64, err, want)
				}
			}
			if want >= math.MinInt32 && want <= math.MaxInt32 {
				var i32 int32
				var f32 float32
				if err := codec.Msgpack.Unmarshal(data, &i32); err != nil || int64(i32) != want {
					t.Errorf("into int32: got %d, %v; want %d", i32, err, want)
				}
				if err := codec.Msgpack.Unmarshal(data, &f32); err != nil || f32 != float32(want) {
					t.Errorf("into float32: got %v, %v; want %d", f32, err, want)
				}
			}
			// JavaScript numbers are floats: a float64 holding the same
			// integer must produce the same bytes.
			if want >= -(1<<53-1) && want <= 1<<53-1 {
				got, err := codec.Msgpack.Append(nil, float64(want))
				if err != nil || hex.EncodeToString(got) != strings.ReplaceAll(tt.hex, " ", "") {
					t.Errorf("Append(float64(%d)) = %x, %v; want %s", want, got, err, tt.hex)
				}
			}
		})
	}
}
