package codec

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Ext is a msgpack extension value of a type that has no Go meaning here:
// anything but −1 (timestamp), 1 (Buffer) and 2 (Date). Decoding into any
// yields an Ext, as the reference decoder yields an ExtData object (§7.2.5),
// and encoding an Ext writes it back unchanged.
//
// A struct field of type Ext accepts any extension; an ext 1 or bin value
// arrives as Type 1 and a Date (type 2) as its equivalent timestamp (−1).
type Ext struct {
	Type int8
	Data []byte
}

// MarshalMsgpack implements msgpack.Marshaler.
func (x Ext) MarshalMsgpack() ([]byte, error) {
	if uint64(len(x.Data)) > math.MaxUint32 {
		return nil, fmt.Errorf("codec: msgpack: extension of %d bytes is too long", len(x.Data))
	}
	b := appendExtHeader(make([]byte, 0, 6+len(x.Data)), x.Type, uint64(len(x.Data)))
	return append(b, x.Data...), nil
}

// UnmarshalMsgpack implements msgpack.Unmarshaler. It accepts an extension or
// a bin value (type 1) and copies the data.
func (x *Ext) UnmarshalMsgpack(b []byte) error {
	typ, data, ok := splitExt(b)
	if !ok {
		return fmt.Errorf("codec: msgpack: cannot decode a value starting %#x into codec.Ext", b[:min(len(b), 1)])
	}
	*x = Ext{Type: typ, Data: append([]byte{}, data...)}
	return nil
}

// splitExt splits b, exactly one extension or bin value, into its type and
// data; bin counts as type 1.
func splitExt(b []byte) (typ int8, data []byte, ok bool) {
	if len(b) < 2 {
		return 0, nil, false
	}
	var hdr int
	var l uint64
	switch c := b[0]; {
	case c >= 0xd4 && c <= 0xd8: // fixext: code, type
		hdr, l, typ = 2, 1<<(c-0xd4), int8(b[1])
	case c >= 0xc4 && c <= 0xc9: // bin or ext 8/16/32: code, length[, type]
		size := 1 << ((c - 0xc4) % 3)
		hdr = 1 + size
		if c >= 0xc7 {
			hdr++
		}
		if len(b) < hdr {
			return 0, nil, false
		}
		for _, x := range b[1 : 1+size] {
			l = l<<8 | uint64(x)
		}
		typ = extBuffer
		if c >= 0xc7 {
			typ = int8(b[hdr-1])
		}
	default:
		return 0, nil, false
	}
	if uint64(len(b)-hdr) != l {
		return 0, nil, false
	}
	return typ, b[hdr:], true
}

// decodeLoose decodes the next value of a normalized payload into the
// dynamic value model documented in the package doc. It is installed as the
// library's map decoder, so maps met through interface values inside typed
// targets are decoded by these rules too. The payload has been validated,
// so lengths are known to fit and nesting is bounded.
func decodeLoose(d *msgpack.Decoder) (any, error) { return decodeLooseWith(d, nil) }

// DecodeLooseOrdered decodes the next value of a payload that codec.Msgpack
// validated (from a msgpack.CustomDecoder of a value it decodes) into the
// dynamic value model, with each map built by newMap from its keys and
// values in payload order — for output that keeps the sender's order, such
// as the procxy command's JSON.
func DecodeLooseOrdered(d *msgpack.Decoder, newMap func(keys []string, vals []any) any) (any, error) {
	return decodeLooseWith(d, newMap)
}

// decodeLooseWith is decodeLoose with maps made by newMap, or as
// map[string]any when it is nil.
func decodeLooseWith(d *msgpack.Decoder, newMap func(keys []string, vals []any) any) (any, error) {
	c, err := d.PeekCode()
	if err != nil {
		return nil, err
	}
	switch {
	case c == 0xc0:
		return nil, d.DecodeNil()
	case c == 0xc2 || c == 0xc3:
		return d.DecodeBool()
	case c == 0xcf:
		u, err := d.DecodeUint64()
		if err != nil || u > math.MaxInt64 {
			return u, err
		}
		return int64(u), nil
	case c <= 0x7f || c >= 0xe0 || (c >= 0xcc && c <= 0xd3):
		return d.DecodeInt64()
	case c == 0xca || c == 0xcb:
		return d.DecodeFloat64()
	case (c >= 0xa0 && c <= 0xbf) || (c >= 0xd9 && c <= 0xdb):
		return d.DecodeString()
	case c >= 0xc4 && c <= 0xc6:
		return d.DecodeBytes()
	case (c >= 0x90 && c <= 0x9f) || c == 0xdc || c == 0xdd:
		n, err := d.DecodeArrayLen()
		if err != nil {
			return nil, err
		}
		s := make([]any, n)
		for i := range s {
			if s[i], err = decodeLooseWith(d, newMap); err != nil {
				return nil, err
			}
		}
		return s, nil
	case (c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf:
		return decodeLooseMap(d, newMap)
	case (c >= 0xd4 && c <= 0xd8) || (c >= 0xc7 && c <= 0xc9):
		return decodeLooseExt(d)
	}
	return nil, fmt.Errorf("codec: msgpack: unexpected code %#02x", c)
}

func decodeLooseMap(d *msgpack.Decoder, newMap func(keys []string, vals []any) any) (any, error) {
	n, err := d.DecodeMapLen()
	if err != nil {
		return nil, err
	}
	if newMap == nil {
		m := make(map[string]any, n)
		for range n {
			k, err := decodeLooseKey(d)
			if err != nil {
				return nil, err
			}
			if m[k], err = decodeLoose(d); err != nil {
				return nil, err
			}
		}
		return m, nil
	}
	keys, vals := make([]string, n), make([]any, n)
	for i := range n {
		if keys[i], err = decodeLooseKey(d); err != nil {
			return nil, err
		}
		if vals[i], err = decodeLooseWith(d, newMap); err != nil {
			return nil, err
		}
	}
	return newMap(keys, vals), nil
}

// decodeLooseKey reads a map key; integers become their decimal text, as
// they become property names in JavaScript.
func decodeLooseKey(d *msgpack.Decoder) (string, error) {
	c, err := d.PeekCode()
	if err != nil {
		return "", err
	}
	switch {
	case (c >= 0xa0 && c <= 0xbf) || (c >= 0xd9 && c <= 0xdb):
		return d.DecodeString()
	case c == 0xcf:
		u, err := d.DecodeUint64()
		return strconv.FormatUint(u, 10), err
	default:
		s, err := d.DecodeInt64()
		return strconv.FormatInt(s, 10), err
	}
}

func decodeLooseExt(d *msgpack.Decoder) (any, error) {
	typ, l, err := d.DecodeExtHeader()
	if err != nil {
		return nil, err
	}
	data := make([]byte, l)
	if err := d.ReadFull(data); err != nil {
		return nil, err
	}
	// Normalization turned ext 1 into bin and ext 2 into a timestamp.
	if typ != extTimestamp {
		return Ext{Type: typ, Data: data}, nil
	}
	if t, ok := parseExactTime(data); ok {
		return t, nil
	}
	sec, nsec, ok := parseTimestamp(data)
	if !ok {
		return nil, fmt.Errorf("codec: msgpack: timestamp extension of %d bytes", l)
	}
	return time.Unix(sec, int64(nsec)).UTC(), nil
}
