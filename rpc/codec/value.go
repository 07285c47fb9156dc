package codec

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"
)

// A ValueError means that a payload's value does not fit the Go type it is
// decoded into: a value of another kind (a string for an int), a number
// out of the type's range (300 for an int8, −1 for a uint) or not whole
// (1.5 for an int), or a value the decoder could not fit for another
// reason (Err). It names the types as Go does, never the msgpack codes.
type ValueError struct {
	Got    string       // what the payload holds, as Go names it: "a string", "an int", "a map", "nil"
	Value  string       // the number that does not fit, when that is the problem: "300", "1.5"
	Want   reflect.Type // the type decoded into
	Nested bool         // the kinds agree; something inside the value does not fit (see Err)
	Path   string       // where inside the value the number is, as Go writes it: "ValOpts.Level", "[2]", `["k"]`; "" at the top
	Err    error        // the decoder's own error, if any
}

func (e *ValueError) Error() string {
	switch {
	case e.Value != "" && e.Path != "":
		return fmt.Sprintf("codec: msgpack: %s: %s does not fit in %v", e.Path, e.Value, e.Want)
	case e.Value != "":
		return fmt.Sprintf("codec: msgpack: %s does not fit in %v", e.Value, e.Want)
	case e.Err != nil:
		return fmt.Sprintf("codec: msgpack: %s does not decode into %v: %v", e.Got, e.Want, e.Err)
	}
	return fmt.Sprintf("codec: msgpack: %s does not decode into %v", e.Got, e.Want)
}

func (e *ValueError) Unwrap() error { return e.Err }

// describe names the kind of the msgpack value that starts with code c
// (after normalization: no ext 1 or 2) as Go would.
func describe(c byte) string {
	switch {
	case c <= 0x7f, c >= 0xe0, c >= 0xcc && c <= 0xd3:
		return "an int"
	case c <= 0x8f, c == 0xde, c == 0xdf:
		return "a map"
	case c <= 0x9f, c == 0xdc, c == 0xdd:
		return "an array"
	case c <= 0xbf, c >= 0xd9 && c <= 0xdb:
		return "a string"
	}
	switch c {
	case 0xc0:
		return "nil"
	case 0xc2, 0xc3:
		return "a bool"
	case 0xc4, 0xc5, 0xc6:
		return "a []byte"
	case 0xca:
		return "a float32"
	case 0xcb:
		return "a float64"
	}
	return "an extension value"
}

// kindFits reports whether a value starting with code c has a kind that
// can decode into t (the decoder may still fail inside it).
func kindFits(c byte, t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if c == 0xc0 || t.Kind() == reflect.Interface {
		return true
	}
	switch describe(c) {
	case "a map":
		return t.Kind() == reflect.Map || t.Kind() == reflect.Struct
	case "an array":
		return t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Struct
	case "a string":
		return t.Kind() == reflect.String || t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8
	case "a []byte":
		return t.Kind() == reflect.String || t.Kind() == reflect.Slice || t.Kind() == reflect.Array
	case "a bool":
		return t.Kind() == reflect.Bool
	case "an extension value":
		return t.Kind() == reflect.Struct
	}
	return false
}

var (
	customDecoder = reflect.TypeFor[msgpack.CustomDecoder]()
	unmarshaler   = reflect.TypeFor[msgpack.Unmarshaler]()
)

// decodeNumber decodes the number at the start of data into v when v
// points to a number (of a type without its own msgpack decoding): a
// value that fits converts (an int into a float64, 0.1 into a float32),
// one that does not is a *ValueError. handled is false when v is not such
// a target or data starts with nil, which the library decodes as zero.
func decodeNumber(data []byte, v any) (handled bool, used int, err error) {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || len(data) == 0 || data[0] == 0xc0 {
		return false, 0, nil
	}
	e := rv.Elem()
	k := e.Kind()
	if k < reflect.Int || k > reflect.Float64 {
		return false, 0, nil
	}
	if t := rv.Type(); t.Implements(customDecoder) || t.Implements(unmarshaler) {
		return false, 0, nil
	}
	isInt, neg, i, u, f, used, ok := readNumber(data)
	if !ok {
		return true, 0, &ValueError{Got: describe(data[0]), Want: e.Type()}
	}
	bad := func(val string) (bool, int, error) {
		return true, 0, &ValueError{Got: describe(data[0]), Value: val, Want: e.Type()}
	}
	switch {
	case k >= reflect.Int && k <= reflect.Int64:
		if !isInt {
			if f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
				return bad(strconv.FormatFloat(f, 'g', -1, 64))
			}
			isInt, neg, i, u = true, f < 0, int64(f), uint64(int64(f))
		}
		switch {
		case !neg && u > math.MaxInt64:
			return bad(strconv.FormatUint(u, 10))
		case !neg:
			i = int64(u)
		}
		if e.OverflowInt(i) {
			return bad(strconv.FormatInt(i, 10))
		}
		e.SetInt(i)
	case k >= reflect.Uint && k <= reflect.Uintptr:
		if !isInt {
			if f != math.Trunc(f) || f < 0 || f >= math.MaxUint64 {
				return bad(strconv.FormatFloat(f, 'g', -1, 64))
			}
			isInt, neg, u = true, false, uint64(f)
		}
		if neg {
			return bad(strconv.FormatInt(i, 10))
		}
		if e.OverflowUint(u) {
			return bad(strconv.FormatUint(u, 10))
		}
		e.SetUint(u)
	default: // float32, float64
		if isInt {
			if neg {
				f = float64(i)
			} else {
				f = float64(u)
			}
		}
		if k == reflect.Float32 && !math.IsInf(f, 0) && math.Abs(f) > math.MaxFloat32 {
			return bad(strconv.FormatFloat(f, 'g', -1, 64))
		}
		e.SetFloat(f)
	}
	return true, used, nil
}

// readNumber reads a msgpack integer or float at the start of data.
func readNumber(data []byte) (isInt, neg bool, i int64, u uint64, f float64, used int, ok bool) {
	c := data[0]
	switch {
	case c <= 0x7f:
		return true, false, 0, uint64(c), 0, 1, true
	case c >= 0xe0:
		return true, true, int64(int8(c)), 0, 0, 1, true
	case c >= 0xcc && c <= 0xcf:
		size := 1 << (c - 0xcc)
		if len(data) < 1+size {
			return
		}
		return true, false, 0, readBE(data[1 : 1+size]), 0, 1 + size, true
	case c >= 0xd0 && c <= 0xd3:
		size := 1 << (c - 0xd0)
		if len(data) < 1+size {
			return
		}
		s := int64(readBE(data[1:1+size])<<(64-8*size)) >> (64 - 8*size)
		return true, s < 0, s, uint64(s), 0, 1 + size, true
	case c == 0xca && len(data) >= 5:
		return false, false, 0, 0, float64(math.Float32frombits(binary.BigEndian.Uint32(data[1:5]))), 5, true
	case c == 0xcb && len(data) >= 9:
		return false, false, 0, 0, math.Float64frombits(binary.BigEndian.Uint64(data[1:9])), 9, true
	}
	return
}
