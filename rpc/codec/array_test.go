package codec_test

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/procxy/procxy/rpc/codec"
)

// within reports whether b's bytes lie inside buf.
func within(b, buf []byte) bool {
	if len(b) == 0 {
		return false
	}
	p, start := uintptr(unsafe.Pointer(unsafe.SliceData(b))), uintptr(unsafe.Pointer(unsafe.SliceData(buf)))
	return p >= start && p+uintptr(len(b)) <= start+uintptr(len(buf))
}

func TestArrayDecoder(t *testing.T) {
	big := bytes.Repeat([]byte{0xab}, 10<<10)
	when := time.UnixMilli(1700000000123).UTC()
	data, err := codec.Msgpack.Append(nil, []any{7, "x", big, []byte{1, 2}, when, map[string]any{"k": true}, nil})
	if err != nil {
		t.Fatal(err)
	}
	for _, alias := range []bool{false, true} {
		var d codec.ArrayDecoder
		n, err := d.Reset(data, alias)
		if err != nil || n != 7 {
			t.Fatalf("Reset = %d, %v; want 7", n, err)
		}
		var (
			i     int
			s     string
			b1    []byte
			b2    []byte
			tm    time.Time
			m     map[string]any
			empty []byte
		)
		for _, v := range []any{&i, &s, &b1, &b2, &tm, &m, &empty} {
			if err := d.Decode(v); err != nil {
				t.Fatalf("alias %v: Decode(%T): %v", alias, v, err)
			}
		}
		if err := d.Finish(); err != nil {
			t.Fatalf("Finish: %v", err)
		}
		if i != 7 || s != "x" || !bytes.Equal(b1, big) || !bytes.Equal(b2, []byte{1, 2}) || !tm.Equal(when) ||
			!reflect.DeepEqual(m, map[string]any{"k": true}) || empty != nil {
			t.Errorf("alias %v: decoded %v %q %d bytes %v %v %v %v", alias, i, s, len(b1), b2, tm, m, empty)
		}
		if within(b1, data) != alias {
			t.Errorf("alias %v: the []byte aliases the payload: %v", alias, within(b1, data))
		}
	}
}

func TestArrayDecoderErrors(t *testing.T) {
	arr := func(v ...any) []byte {
		b, err := codec.Msgpack.Append(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var d codec.ArrayDecoder
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"not an array", arr(1)[1:]},
		{"map", []byte{0x81, 0xa1, 'k', 0x01}},
		{"length beyond the data", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"truncated header", []byte{0xdc, 0x00}},
	} {
		if _, err := d.Reset(tt.data, false); err == nil {
			t.Errorf("%s: Reset(%x) = nil error", tt.name, tt.data)
		}
	}

	// Too few elements for the targets, too many, trailing bytes, a bad element.
	if _, err := d.Reset(arr(1), false); err != nil {
		t.Fatal(err)
	}
	var x, y int
	if err := d.Decode(&x); err != nil {
		t.Fatal(err)
	}
	if err := d.Decode(&y); !errors.Is(err, codec.ErrArrayLength) {
		t.Errorf("decoding past the end: %v, want ErrArrayLength", err)
	}
	d.Reset(arr(1, 2), false)
	d.Decode(&x)
	if err := d.Finish(); !errors.Is(err, codec.ErrArrayLength) {
		t.Errorf("Finish with an element left: %v, want ErrArrayLength", err)
	}
	d.Reset(append(arr(1), 0xc0), false)
	d.Decode(&x)
	if err := d.Finish(); err == nil {
		t.Error("Finish with trailing bytes: nil error")
	}
	d.Reset(arr("not a number"), false)
	if err := d.Decode(&x); err == nil {
		t.Error("decoding a string into *int: nil error")
	}
	d.Reset([]byte{0x91, 0xc4, 0x05, 1, 2}, true) // bin 5 with 2 bytes
	var b []byte
	if err := d.Decode(&b); err == nil {
		t.Error("decoding a truncated bin: nil error")
	}
}

func TestMsgpackBytes(t *testing.T) {
	for _, n := range []int{0, 1, 2, 4, 8, 16, 17, 255, 256, 65535, 65536, 100000} {
		in := bytes.Repeat([]byte{byte(n)}, n)
		enc, err := codec.Msgpack.Append(nil, in)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := codec.MsgpackBytes(enc)
		if !ok || !bytes.Equal(got, in) {
			t.Errorf("%d bytes (%x…): MsgpackBytes = %d bytes, %v", n, enc[:min(len(enc), 6)], len(got), ok)
		}
		hdr, l, ok := codec.MsgpackBytesHeader(enc[:min(len(enc), 16)])
		if !ok || hdr+int(l) != len(enc) || int(l) != n {
			t.Errorf("%d bytes: MsgpackBytesHeader = %d, %d, %v", n, hdr, l, ok)
		}
		// Decoding into a buffer with room reuses it.
		buf := make([]byte, 0, n+10)
		out := buf
		if err := codec.Msgpack.Unmarshal(enc, &out); err != nil || !bytes.Equal(out, in) {
			t.Errorf("%d bytes: Unmarshal = %d bytes, %v", n, len(out), err)
		}
		if n > 0 && unsafe.SliceData(out) != unsafe.SliceData(buf) {
			t.Errorf("%d bytes: Unmarshal did not reuse the buffer", n)
		}
	}
	bin := []byte{0xc4, 0x02, 1, 2}
	for _, bad := range [][]byte{nil, {0xc0}, bin[:3], append(bin, 0), {0xd4, 0x05, 0x00}} {
		if _, ok := codec.MsgpackBytes(bad); ok {
			t.Errorf("MsgpackBytes(%x) = ok", bad)
		}
	}
}

// TestVec: a Vec holds the same bytes as Append, with large byte slices
// referenced, not copied.
func TestVec(t *testing.T) {
	big := bytes.Repeat([]byte{7}, 5000)
	cases := []struct {
		c      codec.Codec
		v      any
		shared bool // the encoding must reference big
	}{
		{codec.Msgpack, 1, false},
		{codec.Msgpack, big, true},
		{codec.Msgpack, &big, true},
		{codec.Msgpack, big[:100], false},
		{codec.Msgpack, []any{1, big, "s", big[:10], nil, big}, true},
		{codec.Msgpack, map[string]any{"b": big}, false},
		{codec.Raw, big, true},
		{codec.Raw, &big, true},
		{codec.Raw, "str", false},
		{codec.JSON, []int{1, 2}, false},
	}
	for i, tc := range cases {
		want, err := tc.c.Append(nil, tc.v)
		if err != nil {
			t.Fatal(err)
		}
		var v codec.Vec
		v.Append([]byte("prefix")) // appends after what is already there
		if err := codec.AppendVec(tc.c, &v, tc.v); err != nil {
			t.Fatalf("%d: %v", i, err)
		}
		got := bytes.Join(v.Parts(), nil)
		if !bytes.Equal(got, append([]byte("prefix"), want...)) || v.Len() != len(got) {
			t.Errorf("%d: %s %T: Vec holds %x…, want prefix %x…", i, tc.c.Name(), tc.v, got[:min(20, len(got))], want[:min(20, len(want))])
		}
		shared := false
		for _, p := range v.Parts() {
			shared = shared || unsafe.SliceData(p) == unsafe.SliceData(big)
		}
		if shared != tc.shared {
			t.Errorf("%d: %s %T: references the caller's bytes: %v, want %v", i, tc.c.Name(), tc.v, shared, tc.shared)
		}
		v.Reset()
		if v.Len() != 0 || len(v.Parts()) != 0 {
			t.Errorf("%d: Reset left %d bytes", i, v.Len())
		}
	}
}

// FuzzArrayDecoder: decoding a payload element by element gives exactly
// what decoding it whole as a []any gives, and []byte targets agree with
// Unmarshal; whatever the input, nothing panics.
func FuzzArrayDecoder(f *testing.F) {
	for _, v := range [][]any{
		{1, "x", []byte{1, 2, 3}},
		{bytes.Repeat([]byte{9}, 300), map[string]any{"a": []any{1.5, nil}}, time.UnixMilli(5).UTC()},
		{},
		{[]any{[]any{}}, int64(-1 << 63), uint64(1 << 63)},
	} {
		b, err := codec.Msgpack.Append(nil, v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}
	for _, h := range []string{"", "90", "91c0", "92c405010203", "dc0001c7020102", "9100", "dd00000001d40100"} {
		f.Add(unhex(f, h), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, alias bool) {
		var whole []any
		wholeErr := codec.Msgpack.Unmarshal(data, &whole)
		var d codec.ArrayDecoder
		n, err := d.Reset(bytes.Clone(data), alias)
		if err != nil {
			if wholeErr == nil && whole != nil {
				t.Fatalf("Reset(%x): %v, but Unmarshal decodes %d elements", data, err, len(whole))
			}
			return
		}
		var elems []any
		for i := range n {
			var x any
			if err := d.Decode(&x); err != nil {
				if wholeErr == nil {
					t.Fatalf("element %d of %x: %v, but Unmarshal decodes it", i, data, err)
				}
				return
			}
			elems = append(elems, x)
		}
		err = d.Finish()
		switch {
		case err == nil && wholeErr != nil:
			t.Fatalf("ArrayDecoder accepts %x, Unmarshal says %v", data, wholeErr)
		case err != nil && wholeErr == nil:
			t.Fatalf("Unmarshal accepts %x, ArrayDecoder says %v", data, err)
		case err == nil && !equalValue(elems, whole, true) && !(len(elems) == 0 && len(whole) == 0):
			t.Fatalf("element by element %#v, whole %#v", elems, whole)
		}
		if err != nil {
			return
		}
		// []byte targets get the bytes Unmarshal gives, in place when
		// aliasing is allowed.
		d.Reset(data, alias)
		for i := range n {
			want, isBytes := whole[i].([]byte)
			if !isBytes {
				var x any
				d.Decode(&x)
				continue
			}
			var b []byte
			if err := d.Decode(&b); err != nil || !bytes.Equal(b, want) {
				t.Fatalf("element %d of %x into *[]byte: %x, %v; want %x", i, data, b, err, want)
			}
			if len(b) > 0 && within(b, data) != alias {
				t.Fatalf("element %d: aliases the payload: %v, want %v", i, within(b, data), alias)
			}
		}
	})
}
