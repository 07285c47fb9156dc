package cli

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/procxy/procxy/rpc/codec"
)

// jsonToMsgpack is what procxy call does with its input.
func jsonToMsgpack(t testing.TB, in string) []byte {
	t.Helper()
	p, err := encodeInput(codec.Msgpack, []byte(in), "input")
	if err != nil {
		t.Fatalf("encodeInput(%q): %v", in, err)
	}
	return p
}

// msgpackToJSON is what procxy call -json does with an answer.
func msgpackToJSON(t testing.TB, p []byte) string {
	t.Helper()
	v, err := decodeOutput(codec.Msgpack, p, "answer")
	if err != nil {
		t.Fatalf("decodeOutput(%x): %v", p, err)
	}
	return string(appendJSON(nil, v))
}

func TestValueRoundTrip(t *testing.T) {
	tests := []struct{ in, out string }{
		{`null`, `null`},
		{` true `, `true`},
		{`-0`, `0`},
		{`-9223372036854775808`, `-9223372036854775808`},
		{`18446744073709551615`, `18446744073709551615`},
		{`2.0`, `2`}, // JavaScript has one number type: msgpack carries it as an integer
		{`1e300`, `1e+300`},
		{`0.1`, `0.1`},
		{`"a\"b\u0000\u00e9<>&"`, `"a\"b\u0000é<>&"`},
		{`{"z":1,"a":{"y":[],"b":{}}}`, `{"z":1,"a":{"y":[],"b":{}}}`},
		{`{"$bytes":""}`, `{"$bytes":""}`},
		{`{"$bytes":"AAEC/w=="}`, `{"$bytes":"AAEC/w=="}`},
		{`{"$date":"2024-06-15T12:30:45.123456789+02:00"}`, `{"$date":"2024-06-15T10:30:45.123Z"}`},
		{`{"$ext":{"type":5,"data":"AQI="}}`, `{"$ext":{"type":5,"data":"AQI="}}`},
		{`{"$ext":{"type":1,"data":"AQI="}}`, `{"$bytes":"AQI="}`},
		{`{"$float":"NaN"}`, `{"$float":"NaN"}`},
		{`{"$float":"-Inf"}`, `{"$float":"-Inf"}`},
		{`{"$other":1}`, `{"$other":1}`},
		{`{"$bytes":"AQ==","x":1}`, `{"$bytes":"AQ==","x":1}`}, // two members: an object
		{`{"a":1,"a":2}`, `{"a":1,"a":2}`},                     // msgpack maps may repeat keys; they are kept
	}
	for _, tt := range tests {
		if got := msgpackToJSON(t, jsonToMsgpack(t, tt.in)); got != tt.out {
			t.Errorf("%s → msgpack → %s, want %s", tt.in, got, tt.out)
		}
	}
}

func TestInputErrors(t *testing.T) {
	tests := []struct{ in, err string }{
		{``, ``}, // empty input is null
		{`{"a":`, `input: at $.a (line 1, column 6): the JSON text ends in the middle of a value`},
		{`[1,]`, `input: at $[1] (line 1, column 4): invalid character ']' looking for beginning of value`},
		{`{"a" 1}`, `input: at $.a (line 1, column 6): invalid character '1' after object key`},
		{"{\n  \"a b\": {\"$date\": \"yesterday\"}\n}", `input: at $["a b"].$date (line 2, column 10): not an RFC 3339 time such as 2024-06-15T12:30:45.123Z: parsing time "yesterday" as "2006-01-02T15:04:05.999999999Z07:00": cannot parse "yesterday" as "2006"`},
		{`{"$float":"nan"}`, `input: at $.$float (line 1, column 1): want "NaN", "+Inf" or "-Inf", got "nan"`},
		{`{"$ext":{"type":300,"data":""}}`, `input: at $.$ext (line 1, column 1): want {"type": -128…127, "data": "<base64>"}`},
		{`{"$ext":{"type":-1,"data":""}}`, `input: at $.$ext (line 1, column 1): extension types -1 and 2 are dates: write {"$date": "…"}`},
		{`{"$bytes":1}`, `input: at $.$bytes (line 1, column 1): $bytes takes a string, got a number`},
		{`1e999`, `input: at $ (line 1, column 1): the number 1e999 is out of the float64 range`},
		{`1 2`, `input: line 1, column 3: unexpected data after the JSON value`},
		{`[1] x`, `input: line 1, column 5: unexpected data after the JSON value`},
	}
	for _, tt := range tests {
		_, err := encodeInput(codec.Msgpack, []byte(tt.in), "input")
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != tt.err {
			t.Errorf("input %q:\n got %s\nwant %s", tt.in, got, tt.err)
		}
	}
}

func TestRawAndJSONCodecs(t *testing.T) {
	if p, err := encodeInput(codec.JSON, []byte(" {\"a\" : [1, 2]}\n"), "input"); err != nil || string(p) != `{"a":[1,2]}` {
		t.Errorf("JSON codec input: %q, %v", p, err)
	}
	if p, err := encodeInput(codec.Raw, []byte(" x\n"), "input"); err != nil || string(p) != " x\n" {
		t.Errorf("raw codec input: %q, %v", p, err)
	}
	if _, err := decodeOutput(codec.JSON, []byte("\x93\x01"), "the answer"); err == nil || !strings.Contains(err.Error(), "the answer is not JSON (2 bytes: 9301); if the method uses another codec") {
		t.Errorf("a JSON answer that is not: %v", err)
	}
}

// FuzzJSONToMsgpack: any JSON input that procxy accepts encodes to
// msgpack that decodes, prints as JSON and encodes again to the same bytes.
func FuzzJSONToMsgpack(f *testing.F) {
	for _, s := range []string{`null`, `[1, -2, 3.5, "x", true, {"a": {"b": []}}]`, `{"$bytes": "AQID"}`,
		`{"$date": "2024-06-15T12:30:45.123Z"}`, `{"$ext": {"type": 9, "data": ""}}`, `{"$float": "+Inf"}`,
		`18446744073709551615`, `-1e-7`, `"\u00e9\ud83d\ude00"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p1, err := encodeInput(codec.Msgpack, []byte(in), "input")
		if err != nil {
			return
		}
		js := msgpackToJSON(t, p1)
		if !json.Valid([]byte(js)) {
			t.Fatalf("%q → %x → invalid JSON %s", in, p1, js)
		}
		p2, err := encodeInput(codec.Msgpack, []byte(js), "again")
		if err != nil {
			t.Fatalf("%q → %s does not parse again: %v", in, js, err)
		}
		if !bytes.Equal(p1, p2) && !hasNaN(p1) {
			t.Fatalf("%q → %x → %s → %x", in, p1, js, p2)
		}
	})
}

// FuzzMsgpackToJSON: any payload that decodes prints as valid JSON that
// reads back into the same JSON. An object whose only key starts with $
// may read back as the value it spells, or be refused.
func FuzzMsgpackToJSON(f *testing.F) {
	for _, v := range []any{nil, int64(-5), uint64(math.MaxUint64), 1.5, "s", []byte{1}, time.UnixMilli(1718454645123).UTC(),
		codec.Ext{Type: 7, Data: []byte{1}}, []any{map[string]any{"k": []any{}}}, map[string]any{"1": 1}} {
		p, err := codec.Msgpack.Append(nil, v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	f.Add([]byte{0x81, 0x01, 0x02})                   // an integer key
	f.Add([]byte{0xd6, 0xff, 0, 0, 0, 1})             // a 32-bit timestamp
	f.Add([]byte{0xc7, 0x01, 0x02, 0x00})             // a bad Date
	f.Add([]byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0x00}) // a lying length
	f.Fuzz(func(t *testing.T, p []byte) {
		v, err := decodeOutput(codec.Msgpack, p, "payload")
		if err != nil {
			return
		}
		js1 := appendJSON(nil, v)
		if !json.Valid(js1) {
			t.Fatalf("%x → invalid JSON %s", p, js1)
		}
		p2, err := encodeInput(codec.Msgpack, js1, "again")
		if err != nil {
			if bytes.Contains(js1, []byte(`{"$`)) {
				return
			}
			t.Fatalf("%x → %s does not read back: %v", p, js1, err)
		}
		if js2 := msgpackToJSON(t, p2); js2 != string(js1) {
			t.Fatalf("%x → %s → %x → %s", p, js1, p2, js2)
		}
	})
}

// hasNaN reports whether a payload may hold a NaN, whose bits need not
// survive a round trip.
func hasNaN(p []byte) bool { return bytes.IndexByte(p, 0xcb) >= 0 || bytes.IndexByte(p, 0xca) >= 0 }
