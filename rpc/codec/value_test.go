package codec_test

import (
	"errors"
	"math"
	"testing"

	"github.com/procxy/procxy/rpc/codec"
)

// TestNumbers: a number decodes into any number type it fits, converted as
// Go converts it; one that does not fit is an error naming both in Go terms.
func TestNumbers(t *testing.T) {
	enc := func(v any) []byte {
		b, err := codec.Msgpack.Append(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	type celsius float32
	var (
		i8  int8
		u   uint
		i   int
		f32 float32
		c   celsius
		u8  uint8
		f64 float64
	)
	for _, tt := range []struct {
		name string
		in   any
		into any
		want any
		err  string
	}{
		{"int8 fits", -128, &i8, int8(-128), ""},
		{"int8 300", 300, &i8, nil, "codec: msgpack: 300 does not fit in int8"},
		{"uint -1", -1, &u, nil, "codec: msgpack: -1 does not fit in uint"},
		{"int 1.5", 1.5, &i, nil, "codec: msgpack: 1.5 does not fit in int"},
		{"int max uint64", uint64(math.MaxUint64), &i, nil, "codec: msgpack: 18446744073709551615 does not fit in int"},
		{"int whole float", 1e15, &i, 1000000000000000, ""},
		{"float32 0.1", 0.1, &f32, float32(0.1), ""},
		{"named float32", 2.5, &c, celsius(2.5), ""},
		{"float32 1e300", 1e300, &f32, nil, "codec: msgpack: 1e+300 does not fit in float32"},
		{"float64 int", 7, &f64, 7.0, ""},
		{"uint8 string", "7", &u8, nil, "codec: msgpack: a string does not decode into uint8"},
		{"int bool", true, &i, nil, "codec: msgpack: a bool does not decode into int"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := codec.Msgpack.Unmarshal(enc(tt.in), tt.into)
			if tt.err != "" {
				if err == nil || err.Error() != tt.err {
					t.Fatalf("got %v, want %q", err, tt.err)
				}
				var ve *codec.ValueError
				if !errorsAs(err, &ve) {
					t.Errorf("%v is not a *ValueError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var d codec.ArrayDecoder
			arr := enc([]any{tt.in})
			if _, err := d.Reset(arr, false); err != nil {
				t.Fatal(err)
			}
			if err := d.Decode(tt.into); err != nil || d.Finish() != nil {
				t.Fatalf("ArrayDecoder: %v", err)
			}
		})
	}
	if i8 != -128 || i != 1e15 || f32 != 0.1 || c != 2.5 || f64 != 7 {
		t.Errorf("decoded %v %v %v %v %v", i8, i, f32, c, f64)
	}
}

func errorsAs(err error, target **codec.ValueError) bool { return errors.As(err, target) }
