package codec

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// The library decodes a number into an integer field by conversion: 300
// becomes 44 in an int8, −1 becomes 18446744073709551615 in a uint. Before
// it decodes into a type with integers inside (struct fields, slice and
// array elements, map values), checkFit walks the normalized payload along
// the type and reports the first number that does not fit, with its path,
// as a *ValueError — the rule decodeNumber applies at the top level.

// fitTypes caches needsFit per type.
var fitTypes sync.Map // reflect.Type → bool

// needsFit reports whether a value of type t can hold an integer below
// its top level.
func needsFit(t reflect.Type) bool {
	if v, ok := fitTypes.Load(t); ok {
		return v.(bool)
	}
	r := holdsInt(t, map[reflect.Type]bool{})
	fitTypes.Store(t, r)
	return r
}

func holdsInt(t reflect.Type, seen map[reflect.Type]bool) bool {
	if seen[t] {
		return false
	}
	seen[t] = true
	if decodesItself(t) {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return true
	case reflect.Pointer, reflect.Array, reflect.Map, reflect.Slice:
		return holdsInt(t.Elem(), seen)
	case reflect.Struct:
		for _, f := range fieldsOf(t).byName {
			if holdsInt(f.typ, seen) {
				return true
			}
		}
	}
	return false
}

// structFields are a struct's fields as the library names them.
type structFields struct {
	byName  map[string]field
	ordered []field // for structs encoded as arrays
	array   bool
}

type field struct {
	index []int
	typ   reflect.Type
	name  string
}

var fieldCache sync.Map // reflect.Type → *structFields

func fieldsOf(t reflect.Type) *structFields {
	if v, ok := fieldCache.Load(t); ok {
		return v.(*structFields)
	}
	sf := &structFields{byName: map[string]field{}}
	addFields(sf, t, nil, 0)
	fieldCache.Store(t, sf)
	return sf
}

func addFields(sf *structFields, t reflect.Type, index []int, depth int) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("msgpack")
		name, opts, _ := strings.Cut(tag, ",")
		if f.Name == "_msgpack" {
			sf.array = sf.array || strings.Contains(opts, "as_array")
			continue
		}
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		idx := append(append([]int(nil), index...), i)
		ft := f.Type
		if f.Anonymous && name == "" && depth < 8 {
			et := ft
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct && !strings.Contains(opts, "noinline") {
				addFields(sf, et, idx, depth+1)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		fl := field{index: idx, typ: ft, name: f.Name}
		if _, dup := sf.byName[name]; !dup {
			sf.byName[name] = fl
		}
		sf.ordered = append(sf.ordered, fl)
	}
}

// checkFit checks the normalized value at the start of b against t and
// returns how many bytes it takes. path is where the value is, for the
// error.
// path is built on the way back from a number that does not fit (so a
// value that fits costs no allocation).
func checkFit(b []byte, t reflect.Type, depth int) (int, error) {
	if len(b) == 0 || depth > maxDepth {
		return len(b), nil
	}
	c := b[0]
	if c == 0xc0 || decodesItself(t) {
		return skip(b), nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		return checkFit(b, t.Elem(), depth+1)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if val, bad := outOfRange(b, t); bad {
			return 0, &ValueError{Got: describe(c), Value: val, Want: t, Nested: true}
		}
		return skip(b), nil
	case reflect.Slice, reflect.Array:
		n, off, ok := arrayHeader(b)
		if !ok {
			return skip(b), nil
		}
		for i := range n {
			used, err := checkFit(b[off:], t.Elem(), depth+1)
			if err != nil {
				return 0, within(err, "["+strconv.Itoa(i)+"]")
			}
			off += used
		}
		return off, nil
	case reflect.Map:
		n, off, ok := mapHeader(b)
		if !ok {
			return skip(b), nil
		}
		for range n {
			key := b[off:]
			off += skip(key)
			used, err := checkFit(b[off:], t.Elem(), depth+1)
			if err != nil {
				return 0, within(err, "["+keyText(key)+"]")
			}
			off += used
		}
		return off, nil
	case reflect.Struct:
		sf := fieldsOf(t)
		if n, off, ok := arrayHeader(b); ok {
			for i := range n {
				if i >= len(sf.ordered) {
					off += skip(b[off:])
					continue
				}
				f := sf.ordered[i]
				used, err := checkFit(b[off:], f.typ, depth+1)
				if err != nil {
					return 0, within(err, "."+f.name)
				}
				off += used
			}
			return off, nil
		}
		n, off, ok := mapHeader(b)
		if !ok {
			return skip(b), nil
		}
		for range n {
			key := b[off:]
			off += skip(key)
			f, known := sf.byName[keyString(key)]
			if !known {
				off += skip(b[off:])
				continue
			}
			used, err := checkFit(b[off:], f.typ, depth+1)
			if err != nil {
				return 0, within(err, "."+f.name)
			}
			off += used
		}
		return off, nil
	}
	return skip(b), nil
}

// keyString is a map key's string, or "" for another kind.
func keyString(b []byte) string {
	l, off, ok := strHeader(b)
	if !ok {
		return ""
	}
	return string(b[off : off+l])
}

// keyText is a map key as Go would write it in an index expression.
func keyText(b []byte) string {
	if _, _, ok := strHeader(b); ok {
		return strconv.Quote(keyString(b))
	}
	if isInt, neg, i, u, _, _, ok := readNumber(b); ok && isInt {
		if neg {
			return strconv.FormatInt(i, 10)
		}
		return strconv.FormatUint(u, 10)
	}
	return "…"
}

func strHeader(b []byte) (l, off int, ok bool) {
	switch c := b[0]; {
	case c >= 0xa0 && c <= 0xbf:
		return int(c & 0x1f), 1, true
	case c >= 0xd9 && c <= 0xdb:
		size := 1 << (c - 0xd9)
		return int(readBE(b[1 : 1+size])), 1 + size, true
	}
	return 0, 0, false
}

func arrayHeader(b []byte) (n, off int, ok bool) { return containerHeader(b, 0x90, 0xdc) }
func mapHeader(b []byte) (n, off int, ok bool)   { return containerHeader(b, 0x80, 0xde) }

// containerHeader reads the header of an array (fix 0x90, wide 0xdc) or a
// map (fix 0x80, wide 0xde): its element count and its own size.
func containerHeader(b []byte, fix, wide byte) (n, off int, ok bool) {
	switch c := b[0]; {
	case c&0xf0 == fix:
		return int(c & 0x0f), 1, true
	case c == wide || c == wide+1:
		size := 2 << (c - wide)
		return int(readBE(b[1 : 1+size])), 1 + size, true
	}
	return 0, 0, false
}

// skip returns the size of the normalized (so valid) value at the start
// of b.
func skip(b []byte) int {
	c := b[0]
	switch {
	case c <= 0x7f, c >= 0xe0, c == 0xc0, c == 0xc2, c == 0xc3:
		return 1
	case c >= 0xa0 && c <= 0xbf, c >= 0xd9 && c <= 0xdb:
		l, off, _ := strHeader(b)
		return off + l
	case c >= 0x90 && c <= 0x9f, c == 0xdc, c == 0xdd:
		n, off, _ := arrayHeader(b)
		for range n {
			off += skip(b[off:])
		}
		return off
	case c >= 0x80 && c <= 0x8f, c == 0xde, c == 0xdf:
		n, off, _ := mapHeader(b)
		for range 2 * n {
			off += skip(b[off:])
		}
		return off
	case c >= 0xc4 && c <= 0xc6:
		size := 1 << (c - 0xc4)
		return 1 + size + int(readBE(b[1:1+size]))
	case c >= 0xc7 && c <= 0xc9:
		size := 1 << (c - 0xc7)
		return 2 + size + int(readBE(b[1:1+size]))
	case c >= 0xd4 && c <= 0xd8:
		return 2 + 1<<(c-0xd4)
	case c == 0xca:
		return 5
	case c == 0xcb:
		return 9
	case c >= 0xcc && c <= 0xcf:
		return 1 + 1<<(c-0xcc)
	case c >= 0xd0 && c <= 0xd3:
		return 1 + 1<<(c-0xd0)
	}
	return len(b)
}

// within puts seg in front of the path of err, a *ValueError.
func within(err error, seg string) error {
	if ve, ok := err.(*ValueError); ok {
		ve.Path = seg + ve.Path
	}
	return err
}

// outOfRange reports a number at the start of b that the integer type t
// cannot hold, and the number as Go writes it.
func outOfRange(b []byte, t reflect.Type) (string, bool) {
	isInt, neg, i, u, f, _, ok := readNumber(b)
	if !ok {
		return "", false // another kind: the decoder says what is wrong
	}
	bits := t.Bits()
	signed := t.Kind() <= reflect.Int64
	if !isInt {
		lo, hi := 0.0, math.Ldexp(1, bits)
		if signed {
			lo, hi = -math.Ldexp(1, bits-1), math.Ldexp(1, bits-1)
		}
		if f != math.Trunc(f) || f < lo || f >= hi {
			return strconv.FormatFloat(f, 'g', -1, 64), true
		}
		return "", false
	}
	if signed {
		if neg {
			return strconv.FormatInt(i, 10), bits < 64 && i < -1<<(bits-1)
		}
		return strconv.FormatUint(u, 10), u > 1<<(bits-1)-1
	}
	if neg {
		return strconv.FormatInt(i, 10), true
	}
	return strconv.FormatUint(u, 10), bits < 64 && u > 1<<bits-1
}

// decodesItself reports a type with its own msgpack decoding.
func decodesItself(t reflect.Type) bool {
	return t.Implements(customDecoder) || reflect.PointerTo(t).Implements(customDecoder) ||
		t.Implements(unmarshaler) || reflect.PointerTo(t).Implements(unmarshaler)
}
