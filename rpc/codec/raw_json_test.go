package codec_test

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/procxy/procxy/rpc/codec"
)

func TestNames(t *testing.T) {
	for c, want := range map[codec.Codec]string{codec.Msgpack: "msgpack", codec.Raw: "raw", codec.JSON: "json"} {
		if got := c.Name(); got != want {
			t.Errorf("Name() = %q, want %q", got, want)
		}
	}
}

func TestRawRoundTrip(t *testing.T) {
	p := []byte{0, 1, 0xff}
	tests := []struct {
		name string
		in   any
		want []byte
	}{
		{"nil", nil, []byte{}},
		{"bytes", p, p},
		{"empty-bytes", []byte{}, []byte{}},
		{"bytes-ptr", &p, p},
		{"string", "héllo", []byte("héllo")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := codec.Raw.Append([]byte("x"), tt.in)
			if err != nil || !bytes.Equal(got, append([]byte("x"), tt.want...)) {
				t.Fatalf("Append(%#v) = %q, %v; want %q", tt.in, got, err, append([]byte("x"), tt.want...))
			}
			payload := got[1:]
			var b []byte
			var s string
			var a any
			for _, target := range []any{&b, &s, &a} {
				if err := codec.Raw.Unmarshal(payload, target); err != nil {
					t.Fatalf("Unmarshal into %T: %v", target, err)
				}
			}
			if !bytes.Equal(b, tt.want) || b == nil || s != string(tt.want) || !bytes.Equal(a.([]byte), tt.want) {
				t.Errorf("Unmarshal(%q) = %q, %q, %#v; want %q (non-nil) each time", payload, b, s, a, tt.want)
			}
			if len(payload) > 0 {
				payload[0]++
				if b[0] == payload[0] || a.([]byte)[0] == payload[0] {
					t.Errorf("Unmarshal kept a reference to the payload")
				}
			}
		})
	}
}

func TestRawErrors(t *testing.T) {
	for _, v := range []any{1, []int{1}, (*[]byte)(nil), struct{}{}} {
		if got, err := codec.Raw.Append([]byte("keep"), v); err == nil || !strings.Contains(err.Error(), "codec: raw: cannot encode") || string(got) != "keep" {
			t.Errorf("Append(%T) = %q, %v; want dst unchanged and a codec: raw error naming the type", v, got, err)
		}
	}
	var n int
	for _, v := range []any{nil, &n, []byte{}, (*[]byte)(nil), (*string)(nil), (*any)(nil)} {
		if err := codec.Raw.Unmarshal([]byte("x"), v); err == nil || !strings.Contains(err.Error(), "codec: raw: cannot decode into") {
			t.Errorf("Unmarshal into %T: error = %v, want a codec: raw error naming the type", v, err)
		}
	}
}

func TestJSONRoundTrip(t *testing.T) {
	type item struct {
		Name string   `json:"name"`
		Tags []string `json:"tags,omitempty"`
		N    float64  `json:"n"`
	}
	tests := []struct {
		name string
		in   any
		json string
	}{
		{"struct", item{Name: "<a&b>", Tags: []string{"x"}, N: 1.5}, `{"name":"<a&b>","tags":["x"],"n":1.5}`},
		{"nil", nil, `null`},
		{"string", "zażółć", `"zażółć"`},
		{"map", map[string]any{"a": 1.0, "b": []any{true, nil}}, `{"a":1,"b":[true,null]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := codec.JSON.Append([]byte("x"), tt.in)
			if err != nil || string(got) != "x"+tt.json {
				t.Fatalf("Append(%#v) = %q, %v; want %q", tt.in, got, err, "x"+tt.json)
			}
			out := reflect.New(reflect.TypeOf(&tt.in).Elem())
			if tt.in != nil {
				out = reflect.New(reflect.TypeOf(tt.in))
			}
			if err := codec.JSON.Unmarshal(got[1:], out.Interface()); err != nil {
				t.Fatalf("Unmarshal(%s): %v", got[1:], err)
			}
			if !reflect.DeepEqual(out.Elem().Interface(), tt.in) && tt.in != nil {
				t.Errorf("Unmarshal(%s) = %#v, want %#v", got[1:], out.Elem().Interface(), tt.in)
			}
		})
	}
}

func TestJSONErrors(t *testing.T) {
	var v any
	for _, in := range []string{"", "1 2", "{", "nul"} {
		if err := codec.JSON.Unmarshal([]byte(in), &v); err == nil || !strings.HasPrefix(err.Error(), "codec: json: ") {
			t.Errorf("Unmarshal(%q) error = %v, want a codec: json error", in, err)
		}
	}
	if got, err := codec.JSON.Append([]byte("keep"), make(chan int)); err == nil || string(got) != "keep" {
		t.Errorf("Append(chan) = %q, %v; want dst unchanged and an error", got, err)
	}
}
