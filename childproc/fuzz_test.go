//go:build linux

package childproc_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/procxy/procxy/childproc"
)

// chunkReader returns at most n bytes per Read, to split lines anywhere.
type chunkReader struct {
	data []byte
	n    int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), r.n, len(r.data))
	copy(p, r.data[:n])
	r.data = r.data[n:]
	return n, nil
}

// FuzzLineReader reads the input as a stream of IPC lines, in chunks of
// a fuzzed size. Each line must be exactly the input's bytes up to a
// '\n'; each line that decodes must survive a round trip through the
// encoder (one valid, non-empty JSON line with the same value), and an
// internal (NODE_) message must be refused by the encoder.
func FuzzLineReader(f *testing.F) {
	var all []byte
	for _, v := range nodeVectors {
		b := vectorBytes(f, v.hex)
		f.Add(b, uint8(7))
		all = append(all, b...)
	}
	f.Add(all, uint8(1))
	f.Add(all, uint8(255))
	f.Add([]byte("{\"crlf\":true}\r\n\n{\"split\":\"yes\"}\n{\"cmd\":\"NODE_HANDLE\",\"type\":\"net.Server\",\"msg\":{}}\n\xff\xfe\n"), uint8(3))
	f.Add([]byte(`{"cmd":"\u004eODE_X","cmd":"ok"}`+"\n"+`{"a":"<&>\u2028"}`+"\n\"tail"), uint8(5))

	const max = 4096
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		lr := childproc.NewLineReader(&chunkReader{data, int(chunk)%64 + 1}, max)
		consumed := 0
		for {
			line, err := lr.ReadLine()
			if err != nil {
				rest := data[consumed:]
				nl := bytes.IndexByte(rest, '\n')
				switch {
				case errors.Is(err, childproc.ErrMessageTooLarge):
					if nl >= 0 && nl <= max || nl < 0 && len(rest) <= max {
						t.Fatalf("ErrMessageTooLarge for a %d-byte line (tail %d)", nl, len(rest))
					}
				case err == io.EOF:
					if len(rest) != 0 {
						t.Fatalf("EOF with %d bytes left", len(rest))
					}
				case errors.Is(err, io.ErrUnexpectedEOF):
					if len(rest) == 0 || nl >= 0 {
						t.Fatalf("ErrUnexpectedEOF with tail %q", rest)
					}
				default:
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			want := data[consumed:]
			if len(want) <= len(line) || !bytes.Equal(line, want[:len(line)]) || want[len(line)] != '\n' {
				t.Fatalf("line %q is not the input up to its newline", line)
			}
			consumed += len(line) + 1
			checkRoundTrip(t, line, max)
		}
	})
}

func checkRoundTrip(t *testing.T, line []byte, max int) {
	if got, want := childproc.ValidJSON(line), json.Valid(line); got != want {
		t.Fatalf("ValidJSON(%q) = %v, json.Valid = %v", line, got, want)
	}
	msg, cmd, err := childproc.ParseLine(line)
	if err != nil {
		if !errors.Is(err, childproc.ErrProtocol) {
			t.Fatalf("ParseLine error %v does not match ErrProtocol", err)
		}
		if json.Valid(bytes.Trim(line, " \t\r")) && len(bytes.Trim(line, " \t\r")) > 0 {
			t.Fatalf("ParseLine rejected valid JSON %q: %v", line, err)
		}
		return
	}
	if !json.Valid(msg) {
		t.Fatalf("ParseLine returned invalid JSON %q", msg)
	}
	for _, v := range []any{json.RawMessage(msg), decodeNumber(t, msg)} {
		out, err := childproc.AppendMessage(nil, v, 8*max)
		if cmd != "" {
			if !errors.Is(err, childproc.ErrInternalMessage) {
				t.Fatalf("internal message %q (cmd %q) encoded: %q, %v", msg, cmd, out, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("encode %q: %v", msg, err)
		}
		if len(out) < 2 || out[len(out)-1] != '\n' || bytes.IndexByte(out, '\n') != len(out)-1 {
			t.Fatalf("encoded %q: want one non-empty line", out)
		}
		msg2, cmd2, err := childproc.ParseLine(out[:len(out)-1])
		if err != nil || cmd2 != "" {
			t.Fatalf("re-parse %q: %v, cmd %q", out, err, cmd2)
		}
		if a, b := decodeNumber(t, msg), decodeNumber(t, msg2); !reflect.DeepEqual(a, b) {
			t.Fatalf("round trip changed the value: %q -> %q", msg, msg2)
		}
	}
}

func decodeNumber(t *testing.T, b []byte) any {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode valid JSON %q: %v", b, err)
	}
	return v
}

// TestValidJSON compares the fast validator with encoding/json.Valid on
// edge cases; FuzzLineReader compares them on every fuzzed line.
func TestValidJSON(t *testing.T) {
	deep := func(n int, open, close string) string {
		return strings.Repeat(open, n) + strings.Repeat(close, n)
	}
	for _, s := range []string{
		``, ` `, `1`, ` 1 `, `-`, `-0`, `-01`, `01`, `1.`, `1.5`, `.5`, `1e`, `1e+`, `1E-7`, `1e5.0`, `0x10`,
		`"`, `""`, `"\"`, `"\\"`, `"\u12"`, `"\u12G4"`, `"\uABCD"`, `"\x"`, "\"\x01\"", "\"\x7f\"", "\"\xff\"", `"\/"`,
		`t`, `tru`, `true`, `truex`, `null`, `nul`, `false`, `[`, `[]`, `[,]`, `[1,]`, `[1 2]`, `[1,2]`,
		`{`, `{}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{"a":1 "b":2}`, `{1:2}`, `{"a":1}x`, `1 2`, "\t{\r\n}\n",
		deep(10000, "[", "]"), deep(10001, "[", "]"), deep(10000, `{"a":`, "}"), deep(10001, `{"a":`, "}"),
	} {
		if got, want := childproc.ValidJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("ValidJSON(%.40q) = %v, want %v", s, got, want)
		}
	}
}
