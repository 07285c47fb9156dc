package codec

import "fmt"

// Vec is an encoded payload in pieces: bytes the codec encoded into the
// Vec's own buffer, and byte slices of the encoded value itself, which are
// referenced rather than copied. A connection writes the pieces with one
// vectored write, so a large []byte argument or result goes from the
// caller's memory to the socket without an intermediate copy.
//
// The zero Vec is empty and ready to use. A Vec is not safe for concurrent
// use; reuse one with Reset.
type Vec struct {
	buf   []byte
	segs  []vecSeg
	parts [][]byte
}

// vecSeg is buf[from:to], or ref when ref is not nil.
type vecSeg struct {
	from, to int
	ref      []byte
}

// Reset empties v and drops its references to encoded values, keeping its
// buffers.
func (v *Vec) Reset() {
	v.buf = v.buf[:0]
	clear(v.segs)
	v.segs = v.segs[:0]
	clear(v.parts)
	v.parts = v.parts[:0]
}

// Append adds encoded bytes.
func (v *Vec) Append(p []byte) { v.buf = append(v.buf, p...) }

// AppendWith lets fn append encoded bytes to v's buffer.
func (v *Vec) AppendWith(fn func(dst []byte) ([]byte, error)) error {
	b, err := fn(v.buf)
	if err != nil {
		return err
	}
	v.buf = b
	return nil
}

// Ref adds p without copying it; p must not change until the Vec has been
// written.
func (v *Vec) Ref(p []byte) {
	if len(p) == 0 {
		return
	}
	v.close()
	v.segs = append(v.segs, vecSeg{ref: p})
}

// close records the bytes appended since the last segment as a segment.
func (v *Vec) close() {
	from := 0
	for i := len(v.segs) - 1; i >= 0; i-- {
		if v.segs[i].ref == nil {
			from = v.segs[i].to
			break
		}
	}
	if from < len(v.buf) {
		v.segs = append(v.segs, vecSeg{from: from, to: len(v.buf)})
	}
}

// Cap returns the capacity of v's own buffer.
func (v *Vec) Cap() int { return cap(v.buf) }

// Len returns the payload length.
func (v *Vec) Len() int {
	n := len(v.buf)
	for _, s := range v.segs {
		n += len(s.ref)
	}
	return n
}

// Parts returns the payload as slices to write in order. They alias v and
// the referenced values and are valid until v is changed or reset.
func (v *Vec) Parts() [][]byte {
	v.close()
	v.parts = v.parts[:0]
	for _, s := range v.segs {
		if s.ref != nil {
			v.parts = append(v.parts, s.ref)
		} else {
			v.parts = append(v.parts, v.buf[s.from:s.to])
		}
	}
	return v.parts
}

// VecAppender is implemented by codecs that can encode into a Vec without
// copying large byte slices of the value. [Msgpack] and [Raw] implement it.
type VecAppender interface {
	AppendVec(v *Vec, x any) error
}

// AppendVec encodes x into v with c, referencing large byte slices when c
// supports it and copying the encoding into v's buffer otherwise.
func AppendVec(c Codec, v *Vec, x any) error {
	if va, ok := c.(VecAppender); ok {
		return va.AppendVec(v, x)
	}
	return v.AppendWith(func(dst []byte) ([]byte, error) { return c.Append(dst, x) })
}

// minRef is the smallest []byte that msgpack references instead of
// copying; copying a small slice is cheaper than another iovec.
const minRef = 4 << 10

// AppendVec encodes x as Append does. A []byte of at least 4 KiB, alone or
// as an element of a []any (the arguments of an object-proxy call), is
// referenced: only its extension header is written to v's buffer. The bytes
// are the same as Append's.
func (c msgpackCodec) AppendVec(v *Vec, x any) error {
	var big []byte
	switch b := x.(type) {
	case []byte:
		big = b
	case *[]byte:
		if b != nil {
			big = *b
		}
	case []any:
		return c.appendArray(v, b)
	}
	if len(big) >= minRef {
		v.buf = appendExtHeader(v.buf, extBuffer, uint64(len(big)))
		v.Ref(big)
		return nil
	}
	out, err := c.Append(v.buf, x)
	if err != nil {
		return err
	}
	v.buf = out
	return nil
}

// AppendMsgpackArray appends elems encoded as one msgpack array, the same
// bytes as Msgpack.Append(dst, elems), referencing each []byte element of
// at least 4 KiB instead of copying it. The object proxy encodes call
// arguments with it.
func AppendMsgpackArray(v *Vec, elems []any) error { return msgpackCodec{}.appendArray(v, elems) }

// AppendMsgpackGoArray is AppendMsgpackArray with MsgpackGo's exact times.
func AppendMsgpackGoArray(v *Vec, elems []any) error {
	return msgpackCodec{exact: true}.appendArray(v, elems)
}

func (c msgpackCodec) appendArray(v *Vec, elems []any) error {
	v.buf = appendLen(v.buf, uint64(len(elems)), 0x90, 0, 0xdc, 0xdd)
	for i, e := range elems {
		if p, ok := e.([]byte); ok && len(p) >= minRef {
			v.buf = appendExtHeader(v.buf, extBuffer, uint64(len(p)))
			v.Ref(p)
			continue
		}
		out, err := c.Append(v.buf, e)
		if err != nil {
			return fmt.Errorf("%w (element %d of %d)", err, i+1, len(elems))
		}
		v.buf = out
	}
	return nil
}

// AppendVec references a []byte (or *[]byte) value instead of copying it.
func (rawCodec) AppendVec(v *Vec, x any) error {
	switch b := x.(type) {
	case []byte:
		v.Ref(b)
		return nil
	case *[]byte:
		if b != nil {
			v.Ref(*b)
			return nil
		}
	}
	out, err := Raw.Append(v.buf, x)
	if err != nil {
		return err
	}
	v.buf = out
	return nil
}
