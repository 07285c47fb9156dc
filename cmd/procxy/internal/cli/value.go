package cli

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/procxy/procxy/rpc/codec"
)

// The CLI's value model sits between JSON, which a person types and
// reads, and msgpack, which Procwire methods take and return. It keeps
// the order of object keys both ways. Values that JSON cannot write are
// written as one-member objects, and read back from them:
//
//	{"$bytes": "AQID"}                    []byte (a Node.js Buffer), base64
//	{"$date": "2024-06-15T12:30:45.123Z"} a timestamp (a JavaScript Date), RFC 3339
//	{"$ext": {"type": 5, "data": "AQID"}} another msgpack extension
//	{"$float": "NaN"}                     NaN, "+Inf" or "-Inf"
//
// Other values: null, bool, int64 (uint64 above math.MaxInt64), float64,
// string, []any and object.

// object is a JSON object or msgpack map whose keys keep their order.
type object []member

type member struct {
	key string
	val any
}

// EncodeMsgpack writes o as a msgpack map in order.
func (o object) EncodeMsgpack(enc *msgpack.Encoder) error {
	if err := enc.EncodeMapLen(len(o)); err != nil {
		return err
	}
	for _, m := range o {
		if err := enc.EncodeString(m.key); err != nil {
			return err
		}
		if err := enc.Encode(m.val); err != nil {
			return err
		}
	}
	return nil
}

// ---- JSON → value ----------------------------------------------------

// inputError is input that does not fit: where it is wrong and why.
type inputError struct {
	source    string // "the JSON argument", "file x.json", "stdin"
	path      string // "$.a[2]"
	line, col int
	msg       string
}

func (e *inputError) Error() string {
	where := fmt.Sprintf("line %d, column %d", e.line, e.col)
	if e.path != "" {
		where = fmt.Sprintf("at %s (%s)", e.path, where)
	}
	return fmt.Sprintf("%s: %s: %s", e.source, where, e.msg)
}

// jsonReader parses JSON text into the value model, tracking where each
// value is so that errors can say it.
type jsonReader struct {
	src    []byte
	source string
	dec    *json.Decoder
}

// parseJSON parses src, exactly one JSON value, into the value model.
func parseJSON(src []byte, source string) (any, error) {
	r := &jsonReader{src: src, source: source, dec: json.NewDecoder(bytes.NewReader(src))}
	r.dec.UseNumber()
	v, err := r.value("$")
	if err != nil {
		return nil, err
	}
	off := r.dec.InputOffset()
	if _, err := r.dec.Token(); err != io.EOF {
		return nil, r.errAt(r.skipSpace(off), "", "unexpected data after the JSON value")
	}
	return v, nil
}

// skipSpace returns the offset of the first byte at or after off that is
// not white space, a colon or a comma: where the next token starts.
func (r *jsonReader) skipSpace(off int64) int64 {
	for off < int64(len(r.src)) && strings.IndexByte(" \t\r\n:,", r.src[off]) >= 0 {
		off++
	}
	return off
}

func (r *jsonReader) errAt(off int64, path, msg string) error {
	off = min(max(off, 0), int64(len(r.src)))
	line := 1 + bytes.Count(r.src[:off], []byte{'\n'})
	col := 1 + utf8.RuneCount(r.src[bytes.LastIndexByte(r.src[:off], '\n')+1:off])
	return &inputError{source: r.source, path: path, line: line, col: col, msg: msg}
}

// tokenError turns an error of the decoder, reading a token that starts
// at offset at, into an inputError.
func (r *jsonReader) tokenError(err error, path string, at int64) error {
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		return r.errAt(at, path, se.Error())
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		if len(bytes.TrimSpace(r.src)) == 0 {
			return r.errAt(0, "", "no JSON value")
		}
		return r.errAt(int64(len(r.src)), path, "the JSON text ends in the middle of a value")
	}
	return r.errAt(r.dec.InputOffset(), path, err.Error())
}

// token reads the next token and returns where it starts.
func (r *jsonReader) token(path string) (json.Token, int64, error) {
	at := r.skipSpace(r.dec.InputOffset())
	tok, err := r.dec.Token()
	if err != nil {
		return nil, at, r.tokenError(err, path, at)
	}
	return tok, at, nil
}

func (r *jsonReader) value(path string) (any, error) {
	tok, start, err := r.token(path)
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return r.array(path)
		}
		return r.object(path, start)
	case json.Number:
		return r.number(t, path, start)
	}
	return tok, nil // string, bool or nil
}

func (r *jsonReader) array(path string) (any, error) {
	arr := []any{}
	for r.dec.More() {
		v, err := r.value(fmt.Sprintf("%s[%d]", path, len(arr)))
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
	}
	if _, _, err := r.token(path); err != nil { // ']'
		return nil, err
	}
	return arr, nil
}

func (r *jsonReader) object(path string, start int64) (any, error) {
	obj := object{}
	for r.dec.More() {
		tok, _, err := r.token(path)
		if err != nil {
			return nil, err
		}
		key := tok.(string) // the decoder only yields string keys
		v, err := r.value(memberPath(path, key))
		if err != nil {
			return nil, err
		}
		obj = append(obj, member{key, v})
	}
	if _, _, err := r.token(path); err != nil { // '}'
		return nil, err
	}
	if len(obj) == 1 && strings.HasPrefix(obj[0].key, "$") {
		v, err := special(obj[0].key, obj[0].val)
		if err != nil {
			return nil, r.errAt(start, memberPath(path, obj[0].key), err.Error())
		}
		if v != nil {
			return v, nil
		}
	}
	return obj, nil
}

func memberPath(path, key string) string {
	ident := key != ""
	for i, c := range key {
		if !(c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			ident = false
		}
	}
	if ident {
		return path + "." + key
	}
	return fmt.Sprintf("%s[%s]", path, strconv.Quote(key))
}

func (r *jsonReader) number(n json.Number, path string, start int64) (any, error) {
	s := n.String()
	if !strings.ContainsAny(s, ".eE") {
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(s, 10, 64); err == nil {
			return u, nil
		}
		// Past 64 bits, an integer that a float64 holds exactly (as
		// 100000000000000000000, which is how 1e20 prints) is that float.
		if f, err := strconv.ParseFloat(s, 64); err == nil && strconv.FormatFloat(f, 'f', -1, 64) == strings.TrimPrefix(s, "+") {
			return f, nil
		}
		return nil, r.errAt(start, path, fmt.Sprintf("the integer %s does not fit in 64 bits (msgpack's limit); write it with an exponent, as %se0, to send a float", s, s))
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, r.errAt(start, path, fmt.Sprintf("the number %s is out of the float64 range", s))
	}
	return f, nil
}

// special converts the one-member objects of the value model ({"$bytes":
// …} and the others). It returns nil, nil for an object that is not one
// of them, such as {"$other": 1}, which stays an object.
func special(key string, v any) (any, error) {
	str := func() (string, error) {
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("%s takes a string, got %s", key, kindOf(v))
		}
		return s, nil
	}
	switch key {
	case "$bytes":
		s, err := str()
		if err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("not valid base64: %v", err)
		}
		return b, nil
	case "$date":
		s, err := str()
		if err != nil {
			return nil, err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return nil, fmt.Errorf("not an RFC 3339 time such as 2024-06-15T12:30:45.123Z: %v", err)
		}
		return t.UTC(), nil
	case "$float":
		s, err := str()
		if err != nil {
			return nil, err
		}
		switch s {
		case "NaN":
			return math.NaN(), nil
		case "+Inf", "Inf", "Infinity":
			return math.Inf(1), nil
		case "-Inf", "-Infinity":
			return math.Inf(-1), nil
		}
		return nil, fmt.Errorf(`want "NaN", "+Inf" or "-Inf", got %q`, s)
	case "$ext":
		o, ok := v.(object)
		var typ, data any
		for _, m := range o {
			switch m.key {
			case "type":
				typ = m.val
			case "data":
				data = m.val
			default:
				ok = false
			}
		}
		t, tok := typ.(int64)
		d, dok := data.(string)
		if !ok || !tok || !dok || t < -128 || t > 127 {
			return nil, errors.New(`want {"type": -128…127, "data": "<base64>"}`)
		}
		b, err := base64.StdEncoding.DecodeString(d)
		if err != nil {
			return nil, fmt.Errorf("data is not valid base64: %v", err)
		}
		switch int8(t) {
		case 1:
			return b, nil // a Buffer: the same as $bytes
		case -1, 2:
			return nil, errors.New(`extension types -1 and 2 are dates: write {"$date": "…"}`)
		}
		return codec.Ext{Type: int8(t), Data: b}, nil
	}
	return nil, nil
}

func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case int64, uint64, float64:
		return "a number"
	case []any:
		return "an array"
	}
	return "an object"
}

// ---- msgpack → value ---------------------------------------------------

// msgValue decodes a msgpack payload into the value model. It is decoded
// by codec.Msgpack, which validates and normalizes the payload first, so
// every length is known to fit and the nesting is bounded.
type msgValue struct{ v any }

// DecodeMsgpack implements msgpack.CustomDecoder.
func (m *msgValue) DecodeMsgpack(d *msgpack.Decoder) error {
	v, err := decodeOrdered(d)
	m.v = v
	return err
}

func decodeOrdered(d *msgpack.Decoder) (any, error) {
	return codec.DecodeLooseOrdered(d, func(keys []string, vals []any) any {
		obj := make(object, len(keys))
		for i := range obj {
			obj[i].key, obj[i].val = keys[i], vals[i]
		}
		return obj
	})
}

// ---- value → JSON ------------------------------------------------------

// appendJSON appends v, a value of the model, as compact JSON.
func appendJSON(dst []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...)
	case bool:
		return strconv.AppendBool(dst, x)
	case int64:
		return strconv.AppendInt(dst, x, 10)
	case uint64:
		return strconv.AppendUint(dst, x, 10)
	case float64:
		switch {
		case math.IsNaN(x):
			return append(dst, `{"$float":"NaN"}`...)
		case math.IsInf(x, 1):
			return append(dst, `{"$float":"+Inf"}`...)
		case math.IsInf(x, -1):
			return append(dst, `{"$float":"-Inf"}`...)
		case x == 0:
			return append(dst, '0') // -0 too, as JSON.stringify writes it
		}
		b, _ := json.Marshal(x) // JavaScript's number formatting
		return append(dst, b...)
	case string:
		return appendString(dst, x)
	case []byte:
		dst = append(dst, `{"$bytes":"`...)
		return append(base64.StdEncoding.AppendEncode(dst, x), `"}`...)
	case time.Time:
		dst = append(dst, `{"$date":"`...)
		return append(x.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00"), `"}`...)
	case codec.Ext:
		dst = fmt.Appendf(dst, `{"$ext":{"type":%d,"data":"`, x.Type)
		return append(base64.StdEncoding.AppendEncode(dst, x.Data), `"}}`...)
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendJSON(dst, e)
		}
		return append(dst, ']')
	case object:
		dst = append(dst, '{')
		for i, m := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(appendString(dst, m.key), ':')
			dst = appendJSON(dst, m.val)
		}
		return append(dst, '}')
	case map[string]any: // from rpc.RemoteError.Data: no order to keep
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		o := make(object, len(keys))
		for i, k := range keys {
			o[i] = member{k, x[k]}
		}
		return appendJSON(dst, o)
	case json.RawMessage:
		var buf bytes.Buffer
		if json.Compact(&buf, x) != nil {
			return appendString(dst, string(x))
		}
		return append(dst, buf.Bytes()...)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return appendString(dst, fmt.Sprint(v))
	}
	return append(dst, b...)
}

// appendString appends s as a JSON string. Bytes that are not UTF-8,
// which JSON cannot carry, become U+FFFD.
func appendString(dst []byte, s string) []byte {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return append(dst, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...)
}

// indentJSON returns compact JSON text indented for a person.
func indentJSON(compact []byte) []byte {
	var buf bytes.Buffer
	if json.Indent(&buf, compact, "", "  ") != nil {
		return compact
	}
	return buf.Bytes()
}
