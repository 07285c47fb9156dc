package codec

import (
	"errors"
	"fmt"
)

// MsgpackBytes returns the bytes of data when data holds exactly one
// msgpack binary value (bin 8/16/32, or the Node Buffer extension, type 1)
// — the encoding of a []byte — in place, without copying. ok is false for
// anything else.
func MsgpackBytes(data []byte) (b []byte, ok bool) {
	b, n, ok := bytesPrefix(data)
	if !ok || n != len(data) {
		return nil, false
	}
	return b, true
}

// bytesPrefix reads a bin or ext-1 value at the start of data and returns
// its bytes (aliasing data) and the length of the whole value.
func bytesPrefix(data []byte) (b []byte, n int, ok bool) {
	hdr, l, ok := MsgpackBytesHeader(data)
	if !ok || l > uint64(len(data)-hdr) {
		return nil, 0, false
	}
	end := hdr + int(l)
	return data[hdr:end:end], end, true
}

// MsgpackBytesHeader parses the header of a msgpack binary value (bin, or
// the Node Buffer extension) at the start of head: the header's size and
// the number of bytes that follow it. head may hold just the first bytes of
// the value; ok is false if they do not start a binary value.
func MsgpackBytesHeader(head []byte) (hdr int, n uint64, ok bool) {
	if len(head) == 0 {
		return 0, 0, false
	}
	switch c := head[0]; c {
	case 0xc4, 0xc5, 0xc6: // bin 8/16/32
		size := 1 << (c - 0xc4)
		if len(head) < 1+size {
			return 0, 0, false
		}
		return 1 + size, readBE(head[1 : 1+size]), true
	case 0xc7, 0xc8, 0xc9: // ext 8/16/32, then the type byte
		size := 1 << (c - 0xc7)
		if len(head) < 2+size || int8(head[1+size]) != extBuffer {
			return 0, 0, false
		}
		return 2 + size, readBE(head[1 : 1+size]), true
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1/2/4/8/16
		if len(head) < 2 || int8(head[1]) != extBuffer {
			return 0, 0, false
		}
		return 2, 1 << (c - 0xd4), true
	}
	return 0, 0, false
}

func readBE(b []byte) uint64 {
	var u uint64
	for _, c := range b {
		u = u<<8 | uint64(c)
	}
	return u
}

// ArrayDecoder decodes the elements of one msgpack array one by one, each
// into its own target, in a single pass over the payload: each element is
// validated and normalized once and decoded straight into its target (the
// object proxy decodes call arguments into the method's parameter types
// this way). A []byte element decoded into a *[]byte aliases the payload
// when the decoder was told it may keep it, and is copied once otherwise.
//
// The zero ArrayDecoder is not usable; call Reset first.
type ArrayDecoder struct {
	data  []byte
	off   int
	left  int
	alias bool
}

// ErrArrayLength is wrapped by ArrayDecoder.Decode when the array has fewer
// elements than decoded, and by Finish when it has more.
var ErrArrayLength = errors.New("codec: msgpack: wrong number of array elements")

// Reset starts decoding data, which must hold exactly one msgpack array,
// and returns its length. With alias set, []byte elements may alias data,
// which the caller then must not change.
func (d *ArrayDecoder) Reset(data []byte, alias bool) (int, error) {
	*d = ArrayDecoder{data: data, alias: alias}
	if len(data) == 0 {
		return 0, fmt.Errorf("codec: msgpack: %w", errEmpty)
	}
	var n uint64
	switch c := data[0]; {
	case c >= 0x90 && c <= 0x9f:
		n, d.off = uint64(c&0x0f), 1
	case c == 0xdc || c == 0xdd:
		size := 2 << (c - 0xdc)
		if len(data) < 1+size {
			return 0, fmt.Errorf("codec: msgpack: unexpected end of data at offset %d", len(data))
		}
		n, d.off = readBE(data[1:1+size]), 1+size
	default:
		return 0, fmt.Errorf("codec: msgpack: code %#02x at offset 0 is not an array", c)
	}
	if n > uint64(len(data)-d.off) { // every element takes at least one byte
		return 0, fmt.Errorf("codec: msgpack: array of length %d at offset 0 exceeds the %d bytes left", n, len(data)-d.off)
	}
	d.left = int(n)
	return d.left, nil
}

// Decode decodes the next element into v, a non-nil pointer, with the
// rules of Msgpack.Unmarshal.
func (d *ArrayDecoder) Decode(v any) error {
	if d.left == 0 {
		return fmt.Errorf("%w: no element left to decode", ErrArrayLength)
	}
	rest := d.data[d.off:]
	if p, ok := v.(*[]byte); ok && p != nil {
		if b, n, ok := bytesPrefix(rest); ok {
			if d.alias {
				*p = b
			} else {
				*p = append((*p)[:0:0], b...)
			}
			d.off += n
			d.left--
			return nil
		}
	}
	if ok, n, err := decodeNumber(rest, v); ok {
		if err != nil {
			return err
		}
		d.off += n
		d.left--
		return nil
	}
	s := decPool.Get().(*decState)
	norm, used, info, err := normalizeFirst(s.buf[:0], rest, toLibrary)
	if err != nil {
		decPool.Put(s)
		return fmt.Errorf("codec: msgpack: element at offset %d: %w", d.off, err)
	}
	d.off += used
	d.left--
	return s.decodeNormalized(norm, info, v)
}

// Finish reports an error unless every element has been decoded and
// nothing follows the array.
func (d *ArrayDecoder) Finish() error {
	if d.left != 0 {
		return fmt.Errorf("%w: %d elements not decoded", ErrArrayLength, d.left)
	}
	if d.off != len(d.data) {
		return fmt.Errorf("codec: msgpack: %d trailing bytes after the value at offset %d", len(d.data)-d.off, d.off)
	}
	return nil
}
