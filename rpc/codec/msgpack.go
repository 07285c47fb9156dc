package codec

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Msgpack is the Procwire default codec: MessagePack, byte-compatible with
// @procwire/codecs 2.0.0 (protocol §7.2). It encodes with
// github.com/vmihailenco/msgpack/v5 (struct tags `msgpack:"name,omitempty"`,
// msgpack.CustomEncoder and friends all apply) and normalizes the result;
// see the package doc for the value rules.
var Msgpack Codec = msgpackCodec{}

type msgpackCodec struct {
	exact bool // times travel exactly (MsgpackGo)
}

func (msgpackCodec) Name() string { return "msgpack" }

// maxPooled is the largest scratch buffer kept for reuse; bigger ones, from
// an occasional large payload, are left to the garbage collector.
const maxPooled = 64 << 10

// encState is a library encoder bound to its own growing scratch buffer.
type encState struct {
	w   appendWriter
	enc *msgpack.Encoder
}

// appendWriter is the library's writer: it appends to b and never fails.
// exact marks MsgpackGo's encoders (see encodeTime).
type appendWriter struct {
	b     []byte
	exact bool
}

func (w *appendWriter) Write(p []byte) (int, error) { w.b = append(w.b, p...); return len(p), nil }
func (w *appendWriter) WriteByte(c byte) error      { w.b = append(w.b, c); return nil }

var encPool, exactPool = sync.Pool{New: func() any { return newEncState(false) }}, sync.Pool{New: func() any { return newEncState(true) }}

func newEncState(exact bool) *encState {
	s := new(encState)
	s.w.exact = exact
	s.enc = msgpack.NewEncoder(&s.w)
	s.enc.UseCompactInts(true) // smallest integer formats, unsigned when >= 0
	return s
}

// Append encodes v and appends it to dst. On error dst is returned unchanged.
func (c msgpackCodec) Append(dst []byte, v any) ([]byte, error) {
	pool := &encPool
	if c.exact {
		pool = &exactPool
	}
	if t, ok := v.(time.Time); ok && c.exact {
		return appendExactTimeExt(dst, t), nil
	}
	s := pool.Get().(*encState)
	s.w.b = s.w.b[:0]
	if err := s.enc.Encode(v); err != nil {
		// s is not returned to the pool: the library does not promise a
		// usable encoder after a failure.
		return dst, fmt.Errorf("codec: msgpack: encode %T: %w", v, err)
	}
	out, _, err := normalize(dst, s.w.b, toWire)
	if cap(s.w.b) > maxPooled {
		s.w.b = nil
	}
	pool.Put(s)
	if err != nil {
		return dst, fmt.Errorf("codec: msgpack: encode %T: invalid encoder output: %w", v, err)
	}
	return out, nil
}

// decState is a library decoder reading a normalized copy of the payload.
type decState struct {
	r   bytes.Reader
	buf []byte
	dec *msgpack.Decoder
}

var decPool = sync.Pool{New: func() any {
	s := new(decState)
	s.dec = msgpack.NewDecoder(&s.r) // a bytes.Reader is read directly, without bufio
	s.dec.SetMapDecoder(decodeLoose)
	return s
}}

// Unmarshal decodes the single value in data into v, a non-nil pointer.
// Decoding into *any, *map[string]any or *[]any replaces the target with a
// fresh value built by the package's dynamic rules (see the package doc);
// other targets are filled by the library, following `msgpack` struct tags.
//
// A []byte decoded into a *[]byte reuses the slice's capacity when it is
// large enough.
func (msgpackCodec) Unmarshal(data []byte, v any) error {
	if p, ok := v.(*[]byte); ok && p != nil {
		if b, ok := MsgpackBytes(data); ok { // the common large case, in one copy
			if *p == nil {
				*p = []byte{}
			}
			*p = append((*p)[:0], b...)
			return nil
		}
	}
	if ok, n, err := decodeNumber(data, v); ok {
		if err == nil && n != len(data) {
			err = fmt.Errorf("codec: msgpack: %d trailing bytes after the value at offset %d", len(data)-n, n)
		}
		return err
	}
	s := decPool.Get().(*decState)
	norm, info, err := normalize(s.buf[:0], data, toLibrary)
	if err != nil {
		decPool.Put(s)
		return fmt.Errorf("codec: msgpack: %w", err)
	}
	return s.decodeNormalized(norm, info, v)
}

// decodeNormalized decodes norm, the normalized form of one value (held in
// s's buffer), into v and returns s to the pool.
func (s *decState) decodeNormalized(norm []byte, info scanInfo, v any) error {
	if p, ok := v.(*time.Time); ok && p != nil {
		if t, n, ok := exactTimeValue(norm); ok && n == len(norm) {
			*p = t
			s.buf = norm
			decPool.Put(s)
			return nil
		}
	}
	s.buf = norm
	if t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Pointer && needsFit(t.Elem()) {
		if _, err := checkFit(norm, t.Elem(), 0); err != nil {
			root := t.Elem()
			for root.Kind() == reflect.Pointer {
				root = root.Elem()
			}
			decPool.Put(s)
			return within(err, root.Name())
		}
	}
	s.r.Reset(norm)
	if err := s.decode(v, info); err != nil {
		// The library can leave state behind after a failure (a half-recorded
		// raw value, for one), so this decoder is not reused.
		if t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Pointer && err != errNilTarget {
			return &ValueError{Got: describe(norm[0]), Want: t.Elem(), Nested: kindFits(norm[0], t.Elem()), Err: err}
		}
		return fmt.Errorf("codec: msgpack: decode into %T: %w", v, err)
	}
	if n := s.r.Len(); n != 0 {
		return fmt.Errorf("codec: msgpack: decode into %T: %d bytes of the value left unread", v, n)
	}
	s.r.Reset(nil)
	if cap(s.buf) > maxPooled {
		s.buf = nil
	}
	decPool.Put(s)
	return nil
}

var errNilTarget = errors.New("nil pointer")

func (s *decState) decode(v any, info scanInfo) error {
	switch p := v.(type) {
	case *any:
		return decodeLooseInto(s.dec, p)
	case *map[string]any:
		return decodeLooseInto(s.dec, p)
	case *[]any:
		return decodeLooseInto(s.dec, p)
	}
	return s.libraryDecode(v, info)
}

// decodeLooseInto sets *p to the next value decoded by the dynamic rules;
// nil sets the zero value.
func decodeLooseInto[T any](d *msgpack.Decoder, p *T) error {
	if p == nil {
		return errNilTarget
	}
	x, err := decodeLoose(d)
	if err != nil {
		return err
	}
	if x == nil {
		var zero T
		*p = zero
		return nil
	}
	t, ok := x.(T)
	if !ok {
		return fmt.Errorf("cannot decode %T into %T", x, *p)
	}
	*p = t
	return nil
}

// libraryDecode runs the library's decoder and the fix-up walk, turning
// panics into errors.
// The library panics on some inputs, for example when a map key repeats for
// an interface field that already holds a map (reflect.Value.Addr of an
// unaddressable value in decodeMapStringInterfaceValue), and wire input must
// never take the process down.
func (s *decState) libraryDecode(v any, info scanInfo) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("msgpack library panic: %v", p)
		}
	}()
	if err := s.dec.Decode(v); err != nil {
		return err
	}
	if info.times || info.float32s {
		fixDecoded(reflect.ValueOf(v), 0)
	}
	return nil
}
