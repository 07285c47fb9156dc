package codec

import (
	"reflect"
	"sync"
	"time"
)

// The library decodes timestamps with time.Unix, which returns local time,
// and keeps a float32 (ca) as float32 when the target is an interface. Its
// decoders are chosen from a process-global registry, so instead of
// replacing them we walk the decoded value afterwards, and only when the
// payload held a timestamp or a float32 (see scanInfo).

var timeType = reflect.TypeFor[time.Time]()

// fixDecoded moves every time.Time reachable from v to UTC and widens float32
// values held in empty interfaces to float64. depth guards against cycles in
// values the caller placed in the target before decoding.
func fixDecoded(v reflect.Value, depth int) {
	if depth > 4*maxDepth {
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			fixDecoded(v.Elem(), depth+1)
		}
	case reflect.Interface:
		if v.IsNil() || !v.CanSet() {
			return
		}
		x := v.Elem()
		switch t := x.Interface().(type) {
		case time.Time:
			v.Set(reflect.ValueOf(toUTC(t)))
		case float32:
			if v.NumMethod() == 0 {
				v.Set(reflect.ValueOf(float64(t)))
			}
		case []any:
			for i := range t {
				fixDecoded(reflect.ValueOf(&t[i]).Elem(), depth+1)
			}
		case map[string]any:
			fixDecoded(x, depth+1)
		default:
			if x.Kind() == reflect.Pointer {
				fixDecoded(x, depth+1)
			}
		}
	case reflect.Struct:
		if v.Type() == timeType {
			if v.CanSet() {
				v.Set(reflect.ValueOf(toUTC(v.Interface().(time.Time))))
			}
			return
		}
		t := v.Type()
		for i := range v.NumField() {
			// Exported fields of an embedded unexported struct are settable
			// (and decoded by the library) even though the struct is not.
			f, sf := v.Field(i), t.Field(i)
			if (f.CanSet() || sf.Anonymous && f.Kind() == reflect.Struct) && mayHold(sf.Type) {
				fixDecoded(f, depth+1)
			}
		}
	case reflect.Slice, reflect.Array:
		if !mayHold(v.Type().Elem()) {
			return
		}
		for i := range v.Len() {
			fixDecoded(v.Index(i), depth+1)
		}
	case reflect.Map:
		if v.IsNil() || !mayHold(v.Type().Elem()) {
			return
		}
		// Keys are taken first: a NaN key, never found again, would make
		// SetMapIndex add entries while a range loop runs.
		e := reflect.New(v.Type().Elem()).Elem()
		for _, k := range v.MapKeys() {
			if x := v.MapIndex(k); x.IsValid() {
				e.Set(x)
				fixDecoded(e, depth+1)
				v.SetMapIndex(k, e)
			}
		}
	}
}

// holders caches mayHold per type.
var holders sync.Map // reflect.Type → bool

// mayHold reports whether a value of type t can contain a time.Time or an
// interface, that is, whether fixDecoded has anything to do in it.
func mayHold(t reflect.Type) bool {
	if v, ok := holders.Load(t); ok {
		return v.(bool)
	}
	r := reaches(t, map[reflect.Type]bool{})
	holders.Store(t, r)
	return r
}

// reaches is mayHold without the cache. A type met again while being
// examined contributes nothing new, so it counts as false there.
func reaches(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t == timeType || t.Kind() == reflect.Interface {
		return true
	}
	if seen[t] {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
		return reaches(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); (f.IsExported() || f.Anonymous) && reaches(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

// toUTC moves a timestamp the library decoded (in Local) to UTC; an exact
// time (MsgpackGo) in another zone keeps it.
func toUTC(t time.Time) time.Time {
	if t.Location() != time.Local {
		return t
	}
	return t.UTC()
}
