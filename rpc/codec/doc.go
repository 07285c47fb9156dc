// Package codec turns application values into Procwire payloads and back.
//
// A [Codec] is chosen per method and per direction on each side of a
// connection; codecs are never negotiated (protocol §7.1). Three are
// provided:
//
//   - [Msgpack], the default: MessagePack byte-compatible with the Node.js
//     reference (@procwire/codecs 2.0.0).
//   - [Raw]: the payload is the bytes themselves.
//   - [JSON]: encoding/json, without a trailing newline.
//
// # Msgpack encoding
//
// Values are encoded by github.com/vmihailenco/msgpack/v5, so `msgpack`
// struct tags and its Marshaler/CustomEncoder interfaces apply, and the
// result is then rewritten into the form JavaScript's encoder produces:
//
//   - integers use the smallest format, unsigned for values >= 0;
//   - a float64 or float32 that holds an integer within ±(2^53−1) is written
//     as that integer (2.0 → 02, −0.0 → 00), any other as float64 (cb):
//     JavaScript has one number type and cannot tell them apart;
//   - []byte becomes extension type 1 (a Node Buffer), never bin;
//   - time.Time becomes the timestamp extension (−1), truncated to the
//     millisecond as a JavaScript Date is;
//   - struct fields are written in declaration order, which gives
//     byte-identical maps; Go maps have no order, so a map's entries come
//     out in random order (the same data, but not the same bytes).
//
// # Msgpack decoding
//
// A payload must hold exactly one value: an empty payload or trailing bytes
// are errors. Every length is checked against the bytes present before
// anything is allocated, nesting is limited to 1000 levels, and map keys must
// be strings or integers. Both the Buffer extension (1) and bin decode into
// []byte; both the timestamp (−1) and Date (2) extensions decode into
// time.Time, always in UTC.
//
// Decoding into any uses these rules:
//
//	nil              nil
//	true, false      bool
//	integers         int64, or uint64 above math.MaxInt64
//	float32/float64  float64
//	str              string
//	bin, ext 1       []byte
//	ext −1, ext 2    time.Time (UTC)
//	other ext types  codec.Ext
//	array            []any
//	map              map[string]any (integer keys become decimal strings)
//
// These rules fill *any, *[]any and *map[string]any targets, and every map
// met through an interface value inside a typed target. The rest of a typed
// target is filled by the library from the normalized payload and gets the
// same types, with one exception: an interface field that directly holds an
// extension of another type (not inside a map) is an error unless the type
// is registered with msgpack.RegisterExt; declare such a field as [Ext].
// A number decoded into a number type (the target itself, or an element
// of an ArrayDecoder) converts as Go converts constants: into any integer
// type it fits, whole, and into float32 or float64 (0.1 into a float32);
// one that does not fit (300 into an int8, −1 into a uint, 1.5 into an
// int) is a [ValueError], as is a value of another kind. Inside structs,
// slices, arrays and maps an integer that does not fit its field, element
// or map value is a [ValueError] too, whose Path says where it is
// ("Opts.Level", "[2]", `["k"]`); the library decodes the rest, and it
// cannot decode a float64 into a float32 field
// (vmihailenco/msgpack#353), so declare float64 fields for numbers coming
// from JavaScript.
//
// # Large values
//
// [AppendVec] encodes into a [Vec], which references large []byte values
// instead of copying them (a connection writes the pieces with one writev).
// [ArrayDecoder] decodes a msgpack array element by element into separate
// targets in one pass, letting []byte elements alias the payload when the
// caller owns it; [MsgpackBytes] finds a binary value's bytes in place.
//
// Section numbers (§) in this package's comments refer to docs/PROCWIRE.md, the
// Procwire facts procxy implements.
package codec
