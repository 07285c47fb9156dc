package codec_test

import (
	"testing"

	"github.com/procxy/procxy/rpc/codec"
	"github.com/vmihailenco/msgpack/v5"
)

type benchCall struct {
	ID     int64   `msgpack:"id"`
	Method string  `msgpack:"method"`
	Args   []int   `msgpack:"args"`
	OK     bool    `msgpack:"ok"`
	Score  float64 `msgpack:"score"`
}

var benchValue = benchCall{ID: 12345, Method: "resize", Args: []int{1, 300, -2}, OK: true, Score: 0.75}

// The "library" sub-benchmarks run bare vmihailenco/msgpack (default
// options) on the same value, to show what the Procwire rules cost.

func BenchmarkMsgpackAppend(b *testing.B) {
	b.Run("codec", func(b *testing.B) {
		buf, _ := codec.Msgpack.Append(nil, &benchValue)
		b.SetBytes(int64(len(buf)))
		b.ReportAllocs()
		for b.Loop() {
			buf, _ = codec.Msgpack.Append(buf[:0], &benchValue)
		}
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = msgpack.Marshal(&benchValue)
		}
	})
}

func BenchmarkMsgpackUnmarshal(b *testing.B) {
	data, err := codec.Msgpack.Append(nil, &benchValue)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("codec", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			var out benchCall
			if err := codec.Msgpack.Unmarshal(data, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("codec-any", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for b.Loop() {
			var out any
			if err := codec.Msgpack.Unmarshal(data, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out benchCall
			if err := msgpack.Unmarshal(data, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
