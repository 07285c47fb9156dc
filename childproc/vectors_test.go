//go:build linux

package childproc_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/procxy/procxy/childproc"
)

// nodeVectors are the lines Node 20 writes for its send() arguments, from
// docs/NODE-IPC.md §7.1, in the order testdata/child.cjs sends them.
var nodeVectors = []struct {
	name string
	hex  string // the line, '\n' included
}{
	{"object", "7b2268656c6c6f223a22776f726c64222c226e223a317d0a"},
	{"string", "22706c61696e20737472696e67220a"},
	{"number", "34320a"},
	{"array", hex.EncodeToString([]byte("[1,null,null,null,null,0,1.5]\n"))},
	{"unicode", "7b22756e69636f6465223a22c3a9e282acf09f9880222c226c73223a22e280a8222c226e6c223a22615c6e62222c2271223a225c225c5c222c2263746c223a225c7530303031222c226c6f6e65223a225c7564383030227d0a"},
	{"lossy", hex.EncodeToString([]byte(`{"buf":{"type":"Buffer","data":[104,105]},"date":"1970-01-01T00:00:00.000Z","map":{},"set":{},"re":{},"err":{}}` + "\n"))},
	{"null", "6e756c6c0a"},
	{"true", "747275650a"},
	{"internal", hex.EncodeToString([]byte(`{"cmd":"NODE_CUSTOM","payload":1}` + "\n"))},
}

func vectorBytes(t testing.TB, h string) []byte {
	t.Helper()
	b, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVectorsFromNode feeds §7.1's bytes, back to back as Node wrote them,
// to a Channel: every user message arrives byte for byte and the NODE_
// message is swallowed.
func TestVectorsFromNode(t *testing.T) {
	ch, peer := rawPeer(t, 0)
	var stream []byte
	for _, v := range nodeVectors {
		stream = append(stream, vectorBytes(t, v.hex)...)
	}
	go func() { peer.Write(stream); peer.Close() }()
	var got [][]byte
	for m := range ch.Messages() {
		got = append(got, m)
	}
	if len(got) != len(nodeVectors)-1 {
		t.Fatalf("got %d messages, want %d (all but the NODE_ one)", len(got), len(nodeVectors)-1)
	}
	for i, m := range got {
		want := bytes.TrimSuffix(vectorBytes(t, nodeVectors[i].hex), []byte("\n"))
		if !bytes.Equal(m, want) {
			t.Errorf("%s: got %s, want %s", nodeVectors[i].name, m, want)
		}
	}
	if ch.Err() != nil {
		t.Errorf("Err() = %v", ch.Err())
	}
}

// TestVectorsFromGo checks that Send writes exactly Node's bytes for every
// §7.1 value Go can express, and a Node-compatible equivalent for the rest.
func TestVectorsFromGo(t *testing.T) {
	type hello struct {
		Hello string `json:"hello"`
		N     int    `json:"n"`
	}
	type buffer struct {
		Type string `json:"type"`
		Data []int  `json:"data"`
	}
	tests := []struct {
		name string
		v    any
		want string // hex of the line; "" means the same as the Node vector
	}{
		{"object", hello{"world", 1}, ""},
		{"string", "plain string", ""},
		{"number", 42, ""},
		{"array", []any{1, nil, nil, nil, nil, 0, 1.5}, ""},
		{"null", nil, ""},
		{"true", true, ""},
		{"buffer", map[string]buffer{"buf": {"Buffer", []int{104, 105}}},
			hex.EncodeToString([]byte(`{"buf":{"type":"Buffer","data":[104,105]}}` + "\n"))},
		// Go escapes U+2028 and cannot hold a lone surrogate; Node parses
		// \u2028 as the same character.
		{"unicode", map[string]string{"unicode": "é€😀", "ls": "\u2028", "nl": "a\nb", "q": `"\`, "ctl": "\x01"},
			hex.EncodeToString([]byte(`{"ctl":"\u0001","ls":"\u2028","nl":"a\nb","q":"\"\\","unicode":"é€😀"}` + "\n"))},
	}
	byName := map[string]string{}
	for _, v := range nodeVectors {
		byName[v.name] = v.hex
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = byName[tt.name]
			}
			line, err := childproc.AppendMessage(nil, tt.v, childproc.DefaultMaxMessageSize)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(line); got != want {
				t.Errorf("got  %s (%q)\nwant %s", got, line, want)
			}
		})
	}
	// The NODE_ vector is refused rather than written.
	if _, err := childproc.AppendMessage(nil, json.RawMessage(`{"cmd":"NODE_CUSTOM","payload":1}`), 1<<20); err == nil ||
		!strings.Contains(err.Error(), "NODE_CUSTOM") {
		t.Errorf("NODE_CUSTOM: got %v, want ErrInternalMessage", err)
	}
}
