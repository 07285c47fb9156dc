package codec_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/procxy/procxy/rpc/codec"
)

// TestExactTime: MsgpackGo keeps a time's nanoseconds and zone, at the top
// level and inside values; Msgpack keeps Procwire's milliseconds in UTC;
// the library's own encoding, for its other users, is unchanged.
func TestExactTime(t *testing.T) {
	want := time.Date(2024, 5, 17, 13, 45, 10, 123456789, time.FixedZone("CEST", 7200))
	type box struct {
		T  time.Time
		TS []time.Time
		M  map[string]time.Time
		A  []any
	}
	for _, v := range []any{want, box{T: want, TS: []time.Time{want}, M: map[string]time.Time{"t": want}, A: []any{want}}} {
		b, err := codec.MsgpackGo.Append(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		var got box
		if tt, ok := v.(time.Time); ok {
			var g time.Time
			if err := codec.Msgpack.Unmarshal(b, &g); err != nil {
				t.Fatal(err)
			}
			got = box{T: g, TS: []time.Time{g}, M: map[string]time.Time{"t": g}, A: []any{g}}
			_ = tt
		} else if err := codec.Msgpack.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		for _, g := range []time.Time{got.T, got.TS[0], got.M["t"], got.A[0].(time.Time)} {
			name, off := g.Zone()
			if !g.Equal(want) || g.Nanosecond() != want.Nanosecond() || name != "CEST" || off != 7200 {
				t.Errorf("MsgpackGo round trip of %T: %v, want %v", v, g, want)
			}
		}
	}
	b, err := codec.Msgpack.Append(nil, want)
	if err != nil {
		t.Fatal(err)
	}
	var ms time.Time
	if err := codec.Msgpack.Unmarshal(b, &ms); err != nil {
		t.Fatal(err)
	}
	if !ms.Equal(want.Truncate(time.Millisecond)) || ms.Location() != time.UTC {
		t.Errorf("Msgpack round trip: %v, want %v in UTC", ms, want.Truncate(time.Millisecond))
	}
	lib, err := msgpack.Marshal(struct{ T time.Time }{want})
	if err != nil {
		t.Fatal(err)
	}
	// fixmap 1, "T", fixext 8 type −1: nanoseconds<<34 | seconds.
	wantLib := []byte{0x81, 0xa1, 'T', 0xd7, 0xff, 0x1d, 0x6f, 0x34, 0x54, 0x66, 0x47, 0x43, 0x46}
	if !bytes.Equal(lib, wantLib) {
		t.Errorf("the library's own encoding changed: % x, want % x", lib, wantLib)
	}
	var back struct{ T time.Time }
	if err := msgpack.Unmarshal(lib, &back); err != nil || !back.T.Equal(want) {
		t.Errorf("the library's own decoding: %v, %v", back.T, err)
	}
}
