package codec_test

import (
	"bytes"
	"math"
	"math/big"
	"time"

	"github.com/procxy/procxy/rpc/codec"
)

// equalValue compares two values of the dynamic model that decoding into any
// produces. NaN equals NaN and times must be in UTC. Unless strict, it allows
// what one encode step legitimately changes: a number may change type
// (float64 2 becomes int64 2) and a time loses its sub-millisecond part.
func equalValue(a, b any, strict bool) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case bool, string:
		return a == b
	case int64, uint64, float64:
		if strict {
			if f, ok := x.(float64); ok && math.IsNaN(f) {
				g, ok := b.(float64)
				return ok && math.IsNaN(g)
			}
			return a == b
		}
		return sameNumber(a, b)
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y) && (x == nil) == (y == nil)
	case time.Time:
		y, ok := b.(time.Time)
		// Msgpack decodes every time in UTC; a MsgpackGo (exact) time, seen
		// as the first value of a non-strict comparison, keeps its zone.
		if !ok || y.Location() != time.UTC || (x.Location() != time.UTC && strict) {
			return false
		}
		if strict {
			return x.Equal(y)
		}
		return x.Unix() == y.Unix() && x.Nanosecond()/1e6 == y.Nanosecond()/1e6
	case codec.Ext:
		y, ok := b.(codec.Ext)
		return ok && x.Type == y.Type && bytes.Equal(x.Data, y.Data)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for i := range x {
			if !equalValue(x[i], y[i], strict) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) || (x == nil) != (y == nil) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !equalValue(v, w, strict) {
				return false
			}
		}
		return true
	}
	return false
}

// sameNumber compares two numbers by value, whatever their Go types.
func sameNumber(a, b any) bool {
	fa, na := toFloat(a)
	fb, nb := toFloat(b)
	if !na || !nb {
		return false
	}
	if fa.IsNaN || fb.IsNaN {
		return fa.IsNaN && fb.IsNaN
	}
	return fa.Value.Cmp(fb.Value) == 0
}

type number struct {
	Value *big.Float
	IsNaN bool
}

func toFloat(v any) (number, bool) {
	f := new(big.Float).SetPrec(128)
	switch x := v.(type) {
	case int64:
		return number{Value: f.SetInt64(x)}, true
	case uint64:
		return number{Value: f.SetUint64(x)}, true
	case float64:
		if math.IsNaN(x) {
			return number{IsNaN: true}, true
		}
		return number{Value: f.SetFloat64(x)}, true
	}
	return number{}, false
}
