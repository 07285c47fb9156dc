package codec_test

import (
	"fmt"
	"time"

	"github.com/procxy/procxy/rpc/codec"
)

func ExampleMsgpack() {
	type job struct {
		ID      int       `msgpack:"id"`
		Name    string    `msgpack:"name"`
		Payload []byte    `msgpack:"payload"` // a Node Buffer (ext 1)
		At      time.Time `msgpack:"at"`      // a Date (timestamp ext −1)
	}
	in := job{ID: 7, Name: "resize", Payload: []byte{1, 2}, At: time.UnixMilli(1700000000123)}

	b, err := codec.Msgpack.Append(nil, in)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%x\n", b)

	var out job
	if err := codec.Msgpack.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	fmt.Println(out.ID, out.Name, out.Payload, out.At.Format(time.RFC3339Nano))

	var loose any
	if err := codec.Msgpack.Unmarshal(b, &loose); err != nil {
		panic(err)
	}
	m := loose.(map[string]any)
	fmt.Printf("%T %T %T\n", m["id"], m["payload"], m["at"])
	// Output:
	// 84a2696407a46e616d65a6726573697a65a77061796c6f6164d5010102a26174d7ff1d5353006553f100
	// 7 resize [1 2] 2023-11-14T22:13:20.123Z
	// int64 []uint8 time.Time
}
