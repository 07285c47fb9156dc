package codec

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
)

// JSON encodes with encoding/json. Append writes no trailing newline and
// does not escape <, > and & (as JavaScript's JSON.stringify does not);
// Unmarshal follows json.Unmarshal, so numbers decode into any as float64.
var JSON Codec = jsonCodec{}

type jsonCodec struct{}

func (jsonCodec) Name() string { return "json" }

type jsonState struct {
	buf bytes.Buffer
	enc *json.Encoder
}

var jsonPool = sync.Pool{New: func() any {
	s := new(jsonState)
	s.enc = json.NewEncoder(&s.buf)
	s.enc.SetEscapeHTML(false)
	return s
}}

func (jsonCodec) Append(dst []byte, v any) ([]byte, error) {
	s := jsonPool.Get().(*jsonState)
	s.buf.Reset()
	if err := s.enc.Encode(v); err != nil {
		return dst, fmt.Errorf("codec: json: encode %T: %w", v, err)
	}
	dst = append(dst, bytes.TrimSuffix(s.buf.Bytes(), []byte("\n"))...)
	if s.buf.Cap() <= maxPooled {
		jsonPool.Put(s)
	}
	return dst, nil
}

func (jsonCodec) Unmarshal(data []byte, v any) error {
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("codec: json: %w", err)
	}
	return nil
}
