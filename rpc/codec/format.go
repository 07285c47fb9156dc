package codec

import (
	"encoding/binary"
	"fmt"
	"math"
)

// MessagePack formats as the reference encoder writes them (§7.2.2, §7.2.3).

// maxDateMillis is the largest magnitude of a JavaScript Date (ECMA-262 TimeClip).
const maxDateMillis = 8.64e15

// v8NaN is the float64 NaN V8 writes (S26); math.NaN() has a different payload.
const v8NaN = 0x7ff8000000000000

// maxSafeInteger is Number.MAX_SAFE_INTEGER, 2^53−1.
const maxSafeInteger = 1<<53 - 1

// parseTimestamp reads the data of a timestamp extension (type −1).
func parseTimestamp(b []byte) (sec int64, nsec uint32, ok bool) {
	switch len(b) {
	case 4:
		return int64(binary.BigEndian.Uint32(b)), 0, true
	case 8:
		x := binary.BigEndian.Uint64(b)
		return int64(x & (1<<34 - 1)), uint32(x >> 34), true
	case 12:
		return int64(binary.BigEndian.Uint64(b[4:])), binary.BigEndian.Uint32(b), true
	}
	return 0, 0, false
}

// parseDate reads the data of a Date extension (type 2): float64 milliseconds,
// truncated toward zero as JavaScript's Date constructor does.
func parseDate(b []byte) (sec int64, nsec uint32, err error) {
	if len(b) != 8 {
		return 0, 0, fmt.Errorf("%d bytes; want 8", len(b))
	}
	f := math.Float64frombits(binary.BigEndian.Uint64(b))
	if !(math.Abs(f) <= maxDateMillis) { // also rejects NaN
		return 0, 0, fmt.Errorf("%v is not a valid time in milliseconds", f)
	}
	ms := int64(f)
	sec = ms / 1000
	if ms%1000 < 0 {
		sec--
	}
	return sec, uint32(ms-sec*1000) * 1e6, nil
}

// appendTimestamp writes a timestamp extension choosing the 32-, 64- or
// 96-bit form exactly as @msgpack/msgpack does (§7.2.3). nsec < 1e9.
func appendTimestamp(b []byte, sec int64, nsec uint32) []byte {
	switch {
	case sec < 0 || sec > 1<<34-1:
		b = append(b, 0xc7, 12, 0xff)
		b = binary.BigEndian.AppendUint32(b, nsec)
		return binary.BigEndian.AppendUint64(b, uint64(sec))
	case nsec == 0 && sec <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xd6, 0xff), uint32(sec))
	default:
		return binary.BigEndian.AppendUint64(append(b, 0xd7, 0xff), uint64(nsec)<<34|uint64(sec))
	}
}

// appendNumber writes f as JavaScript's encoder writes a number: an integer
// within ±(2^53−1) (−0 included) in the smallest integer format, anything
// else as float64.
func appendNumber(b []byte, f float64) []byte {
	if f >= -maxSafeInteger && f <= maxSafeInteger && f == math.Trunc(f) {
		if f < 0 {
			return appendInt(b, int64(f))
		}
		return appendUint(b, uint64(f))
	}
	bits := math.Float64bits(f)
	if f != f {
		bits = v8NaN
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcb), bits)
}

// appendUint writes u in the smallest unsigned format.
func appendUint(b []byte, u uint64) []byte {
	switch {
	case u <= 0x7f:
		return append(b, byte(u))
	case u <= math.MaxUint8:
		return append(b, 0xcc, byte(u))
	case u <= math.MaxUint16:
		return append(b, 0xcd, byte(u>>8), byte(u))
	case u <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(u))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), u)
}

// appendInt writes s in the smallest format, unsigned when s >= 0.
func appendInt(b []byte, s int64) []byte {
	switch {
	case s >= 0:
		return appendUint(b, uint64(s))
	case s >= -32:
		return append(b, byte(s))
	case s >= math.MinInt8:
		return append(b, 0xd0, byte(s))
	case s >= math.MinInt16:
		return append(b, 0xd1, byte(s>>8), byte(s))
	case s >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(s))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(s))
}

// appendLen writes a length header in its smallest form: fix|l when fix is
// set and l fits its mask, else the 8-bit (if c8 is set), 16- or 32-bit form.
func appendLen(b []byte, l uint64, fix, c8, c16, c32 byte) []byte {
	fixMax := uint64(0x0f)
	if fix == 0xa0 {
		fixMax = 0x1f
	}
	switch {
	case fix != 0 && l <= fixMax:
		return append(b, fix|byte(l))
	case c8 != 0 && l <= math.MaxUint8:
		return append(b, c8, byte(l))
	case l <= math.MaxUint16:
		return append(b, c16, byte(l>>8), byte(l))
	}
	return binary.BigEndian.AppendUint32(append(b, c32), uint32(l))
}

// appendExtHeader writes an extension header: fixext for 1, 2, 4, 8 and 16
// bytes, else ext 8/16/32.
func appendExtHeader(b []byte, typ int8, l uint64) []byte {
	switch l {
	case 1, 2, 4, 8, 16:
		code := byte(0xd4)
		for s := l; s > 1; s >>= 1 {
			code++
		}
		return append(b, code, byte(typ))
	}
	return append(appendLen(b, l, 0, 0xc7, 0xc8, 0xc9), byte(typ))
}
