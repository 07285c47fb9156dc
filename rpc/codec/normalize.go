package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Why a byte-level pass exists at all: vmihailenco/msgpack is configured per
// Encoder/Decoder only through flags, and every type-specific hook it offers
// (RegisterExt, Register) is process-global. Registering ext 1 for []byte or
// a millisecond time encoder would change the library for every other user
// in the same binary, so we leave its registry alone and instead rewrite the
// few tokens it gets wrong for Procwire, in one linear pass over the bytes:
//
//   - toWire (after the library encoded a value): float64/float32 follow the
//     JavaScript number rule (UseCompactFloats checks the int64 range, not
//     ±(2^53−1), and keeps float32 as ca), NaN gets V8's bit pattern, bin
//     becomes ext 1, timestamps are truncated to milliseconds, and every
//     header takes its smallest form.
//   - toLibrary (before the library decodes a payload): ext 1 becomes bin and
//     ext 2 (float64 milliseconds) a timestamp, which the library then reads
//     natively; integers are widened to int64 (uint64 above MaxInt64) so that
//     the library's interface decoding yields int64 rather than int8/uint16.
//
// Both directions validate the payload on the way: exactly one value, every
// length checked against the bytes left before anything is allocated, map
// keys restricted to strings and integers (§7.2.6), nesting bounded by
// maxDepth. The library needs this: it allocates what a length claims
// (decoding the five bytes dd ffffffff into an interface asks for a 64 GiB
// []any, a fatal out-of-memory error), and it recurses without a limit.

// maxDepth bounds the nesting of arrays and maps. The reference encoder stops
// at 100; both decoders recurse, so without a bound a small hostile payload
// could exhaust the stack.
const maxDepth = 1000

// maxTimestampSec bounds the seconds of a received timestamp so that
// time.Unix never overflows (JavaScript dates stay within ±8.64e12 s).
const maxTimestampSec = 1 << 62

// Extension types with a meaning in Procwire (§7.2.3, §7.2.4).
const (
	extTimestamp int8 = -1 // msgpack timestamp: 4, 8 or 12 bytes
	extBuffer    int8 = 1  // Node Buffer: the raw bytes
	extDate      int8 = 2  // Date: float64 milliseconds, big-endian
)

type direction uint8

const (
	toWire    direction = iota // library output → Procwire bytes
	toLibrary                  // received payload → library input
)

// scanInfo reports what a toLibrary pass saw, so that the post-decode fix-up
// runs only when it can change something.
type scanInfo struct {
	times    bool // a timestamp (ext −1 or 2)
	float32s bool // a float32 (ca)
}

var errEmpty = errors.New("empty payload")

// normalize appends the normalized form of the single msgpack value in src to
// dst. On error it returns dst unchanged.
func normalize(dst, src []byte, dir direction) ([]byte, scanInfo, error) {
	out, used, info, err := normalizeFirst(dst, src, dir)
	if err != nil {
		return dst, scanInfo{}, err
	}
	if used != len(src) {
		return dst, scanInfo{}, fmt.Errorf("%d trailing bytes after the value at offset %d", len(src)-used, used)
	}
	return out, info, nil
}

// normalizeFirst normalizes the first msgpack value in src, which may be
// followed by more, and reports how many bytes of src it took.
func normalizeFirst(dst, src []byte, dir direction) ([]byte, int, scanInfo, error) {
	if len(src) == 0 {
		return dst, 0, scanInfo{}, errEmpty
	}
	n := normalizer{src: src, dst: dst, dir: dir}
	if err := n.value(0, false); err != nil {
		return dst, 0, scanInfo{}, err
	}
	return n.dst, n.off, n.info, nil
}

type normalizer struct {
	src  []byte
	off  int
	dst  []byte
	dir  direction
	info scanInfo
}

func (n *normalizer) truncated() error {
	return fmt.Errorf("unexpected end of data at offset %d", len(n.src))
}

// readUint reads a size-byte big-endian unsigned integer.
func (n *normalizer) readUint(size int) (uint64, error) {
	if len(n.src)-n.off < size {
		return 0, n.truncated()
	}
	var u uint64
	for _, b := range n.src[n.off : n.off+size] {
		u = u<<8 | uint64(b)
	}
	n.off += size
	return u, nil
}

// fits checks that count items of at least per bytes each fit in what is left.
func (n *normalizer) fits(at int, what string, count, per uint64) error {
	if left := uint64(len(n.src) - n.off); count > left/per {
		return fmt.Errorf("%s of length %d at offset %d exceeds the %d bytes left", what, count, at, left)
	}
	return nil
}

// take returns the next l bytes; fits must have been checked.
func (n *normalizer) take(l uint64) []byte {
	b := n.src[n.off : n.off+int(l)]
	n.off += int(l)
	return b
}

func (n *normalizer) value(depth int, key bool) error {
	at := n.off
	if at >= len(n.src) {
		return n.truncated()
	}
	c := n.src[at]
	n.off++
	if key && !isKeyCode(c) {
		return fmt.Errorf("map key at offset %d has code %#02x; keys must be strings or integers", at, c)
	}
	switch {
	case c <= 0x7f:
		n.putInt(false, 0, uint64(c))
		return nil
	case c >= 0xe0:
		n.putInt(true, int64(int8(c)), 0)
		return nil
	case c <= 0x8f:
		return n.container(at, depth, true, uint64(c&0x0f))
	case c <= 0x9f:
		return n.container(at, depth, false, uint64(c&0x0f))
	case c <= 0xbf:
		return n.str(at, uint64(c&0x1f))
	}
	switch c {
	case 0xc0, 0xc2, 0xc3: // nil, false, true
		n.dst = append(n.dst, c)
		return nil
	case 0xc4, 0xc5, 0xc6: // bin 8/16/32
		l, err := n.readUint(1 << (c - 0xc4))
		if err != nil {
			return err
		}
		return n.bin(at, l)
	case 0xc7, 0xc8, 0xc9: // ext 8/16/32
		l, err := n.readUint(1 << (c - 0xc7))
		if err != nil {
			return err
		}
		return n.ext(at, l)
	case 0xca: // float32
		u, err := n.readUint(4)
		if err != nil {
			return err
		}
		if n.dir == toWire {
			n.dst = appendNumber(n.dst, float64(math.Float32frombits(uint32(u))))
		} else {
			n.info.float32s = true
			n.dst = binary.BigEndian.AppendUint32(append(n.dst, c), uint32(u))
		}
		return nil
	case 0xcb: // float64
		u, err := n.readUint(8)
		if err != nil {
			return err
		}
		if n.dir == toWire {
			n.dst = appendNumber(n.dst, math.Float64frombits(u))
		} else {
			n.dst = binary.BigEndian.AppendUint64(append(n.dst, c), u)
		}
		return nil
	case 0xcc, 0xcd, 0xce, 0xcf: // uint 8/16/32/64
		u, err := n.readUint(1 << (c - 0xcc))
		if err != nil {
			return err
		}
		n.putInt(false, 0, u)
		return nil
	case 0xd0, 0xd1, 0xd2, 0xd3: // int 8/16/32/64
		size := 1 << (c - 0xd0)
		u, err := n.readUint(size)
		if err != nil {
			return err
		}
		s := int64(u<<(64-8*size)) >> (64 - 8*size) // sign-extend
		n.putInt(s < 0, s, uint64(s))
		return nil
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1/2/4/8/16
		return n.ext(at, 1<<(c-0xd4))
	case 0xd9, 0xda, 0xdb: // str 8/16/32
		l, err := n.readUint(1 << (c - 0xd9))
		if err != nil {
			return err
		}
		return n.str(at, l)
	case 0xdc, 0xdd, 0xde, 0xdf: // array 16/32, map 16/32
		l, err := n.readUint(2 << ((c - 0xdc) & 1))
		if err != nil {
			return err
		}
		return n.container(at, depth, c >= 0xde, l)
	}
	return fmt.Errorf("invalid code %#02x at offset %d", c, at)
}

// isKeyCode reports whether c starts a string or an integer.
func isKeyCode(c byte) bool {
	return c <= 0x7f || c >= 0xe0 || (c >= 0xa0 && c <= 0xbf) ||
		(c >= 0xcc && c <= 0xd3) || (c >= 0xd9 && c <= 0xdb)
}

// putInt writes an integer: neg selects s (< 0), otherwise u.
func (n *normalizer) putInt(neg bool, s int64, u uint64) {
	switch {
	case n.dir == toWire && neg:
		n.dst = appendInt(n.dst, s)
	case n.dir == toWire:
		n.dst = appendUint(n.dst, u)
	case neg:
		n.dst = binary.BigEndian.AppendUint64(append(n.dst, 0xd3), uint64(s))
	case u <= math.MaxInt64:
		n.dst = binary.BigEndian.AppendUint64(append(n.dst, 0xd3), u)
	default:
		n.dst = binary.BigEndian.AppendUint64(append(n.dst, 0xcf), u)
	}
}

func (n *normalizer) container(at, depth int, isMap bool, l uint64) error {
	if depth >= maxDepth {
		return fmt.Errorf("nesting deeper than %d at offset %d", maxDepth, at)
	}
	per, what := uint64(1), "array"
	if isMap {
		per, what = 2, "map"
	}
	if err := n.fits(at, what, l, per); err != nil {
		return err
	}
	if isMap {
		n.dst = appendLen(n.dst, l, 0x80, 0, 0xde, 0xdf)
	} else {
		n.dst = appendLen(n.dst, l, 0x90, 0, 0xdc, 0xdd)
	}
	for range l {
		if isMap {
			if err := n.value(depth+1, true); err != nil {
				return err
			}
		}
		if err := n.value(depth+1, false); err != nil {
			return err
		}
	}
	return nil
}

func (n *normalizer) str(at int, l uint64) error {
	if err := n.fits(at, "string", l, 1); err != nil {
		return err
	}
	n.dst = append(appendLen(n.dst, l, 0xa0, 0xd9, 0xda, 0xdb), n.take(l)...)
	return nil
}

func (n *normalizer) bin(at int, l uint64) error {
	if err := n.fits(at, "binary", l, 1); err != nil {
		return err
	}
	if n.dir == toWire {
		n.dst = appendExtHeader(n.dst, extBuffer, l)
	} else {
		n.dst = appendLen(n.dst, l, 0, 0xc4, 0xc5, 0xc6)
	}
	n.dst = append(n.dst, n.take(l)...)
	return nil
}

// ext handles an extension whose length l has been read; the type byte is next.
func (n *normalizer) ext(at int, l uint64) error {
	if n.off >= len(n.src) {
		return n.truncated()
	}
	typ := int8(n.src[n.off])
	n.off++
	if err := n.fits(at, "extension", l, 1); err != nil {
		return err
	}
	data := n.take(l)
	switch {
	case typ == extTimestamp && len(data) >= exactTimeMin:
		// An exact time (MsgpackGo) passes as it is; decoding keeps its zone.
		if _, ok := parseExactTime(data); !ok {
			return fmt.Errorf("timestamp extension of %d bytes at offset %d is not an exact time", l, at)
		}
	case typ == extTimestamp:
		sec, nsec, ok := parseTimestamp(data)
		if !ok {
			return fmt.Errorf("timestamp extension of %d bytes at offset %d; want 4, 8 or 12", l, at)
		}
		if n.dir == toWire {
			if nsec >= 1e9 {
				return fmt.Errorf("timestamp at offset %d has %d nanoseconds", at, nsec)
			}
			n.dst = appendTimestamp(n.dst, sec, nsec-nsec%1e6)
			return nil
		}
		if sec > maxTimestampSec || sec < -maxTimestampSec {
			return fmt.Errorf("timestamp at offset %d: %d seconds is out of range", at, sec)
		}
		n.info.times = true
	case typ == extBuffer && n.dir == toLibrary:
		n.dst = append(appendLen(n.dst, l, 0, 0xc4, 0xc5, 0xc6), data...)
		return nil
	case typ == extDate && n.dir == toLibrary:
		sec, nsec, err := parseDate(data)
		if err != nil {
			return fmt.Errorf("date extension (type 2) at offset %d: %w", at, err)
		}
		n.info.times = true
		n.dst = appendTimestamp(n.dst, sec, nsec)
		return nil
	}
	n.dst = append(appendExtHeader(n.dst, typ, l), data...)
	return nil
}
