package codec

import "fmt"

// Raw is the Procwire raw codec (§7.3): the payload is the bytes themselves.
//
// Append accepts []byte, *[]byte, string and nil (an empty payload).
// Unmarshal copies the payload into a *[]byte, reusing the slice's capacity
// when it is large enough (so a caller can decode into one buffer again and
// again), or into a *string or *any (as a new []byte); the result is never nil.
var Raw Codec = rawCodec{}

type rawCodec struct{}

func (rawCodec) Name() string { return "raw" }

func (rawCodec) Append(dst []byte, v any) ([]byte, error) {
	switch b := v.(type) {
	case nil:
		return dst, nil
	case []byte:
		return append(dst, b...), nil
	case string:
		return append(dst, b...), nil
	case *[]byte:
		if b != nil {
			return append(dst, *b...), nil
		}
	}
	return dst, fmt.Errorf("codec: raw: cannot encode %T; want []byte, *[]byte or string", v)
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	switch p := v.(type) {
	case *[]byte:
		if p != nil {
			if *p == nil {
				*p = []byte{}
			}
			*p = append((*p)[:0], data...)
			return nil
		}
	case *string:
		if p != nil {
			*p = string(data)
			return nil
		}
	case *any:
		if p != nil {
			*p = append([]byte{}, data...)
			return nil
		}
	}
	return fmt.Errorf("codec: raw: cannot decode into %T; want a non-nil *[]byte, *string or *any", v)
}
