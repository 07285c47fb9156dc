package codec

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// MsgpackGo is Msgpack for a peer that is known to be Go (the object
// proxy's parent and child): a time.Time travels exactly — every
// nanosecond, and its zone (UTC, Local, or the zone's name and offset) —
// instead of as Procwire's millisecond timestamp in UTC. Everything else
// is Msgpack's. Never use it towards a Procwire (Node.js) peer, which
// refuses the longer timestamp.
//
// On the wire an exact time is a timestamp extension (type −1) of more
// than 12 bytes: the 12-byte form (nanoseconds uint32, seconds int64),
// then the zone's offset east of UTC in seconds (int32) and its name.
// Both codecs decode it. One exception: a time held in a map[string]any
// (which the library encodes without its extension registry) travels as
// with Msgpack.
var MsgpackGo Codec = msgpackCodec{exact: true}

// The library encodes and decodes time.Time through its process-global
// extension registry. The functions registered here replace its own with
// ones that write and read the same bytes for every encoder except
// MsgpackGo's (recognised by its writer), so other users of the library
// in the same binary see no change.
func init() {
	msgpack.RegisterExtEncoder(extTimestamp, time.Time{}, encodeTime)
	msgpack.RegisterExtDecoder(extTimestamp, time.Time{}, decodeTime)
}

func encodeTime(e *msgpack.Encoder, v reflect.Value) ([]byte, error) {
	t := v.Interface().(time.Time)
	if w, ok := e.Writer().(*appendWriter); ok && w.exact {
		return appendExactTime(nil, t), nil
	}
	return libraryTimestamp(t), nil
}

// libraryTimestamp is the library's own encoding of t's instant.
func libraryTimestamp(t time.Time) []byte {
	secs := uint64(t.Unix())
	if secs>>34 == 0 {
		data := uint64(t.Nanosecond())<<34 | secs
		if data&0xffffffff00000000 == 0 {
			return binary.BigEndian.AppendUint32(nil, uint32(data))
		}
		return binary.BigEndian.AppendUint64(nil, data)
	}
	b := binary.BigEndian.AppendUint32(make([]byte, 0, 12), uint32(t.Nanosecond()))
	return binary.BigEndian.AppendUint64(b, secs)
}

// appendExactTime appends the data of an exact time extension.
func appendExactTime(b []byte, t time.Time) []byte {
	name, off := t.Zone()
	switch t.Location() {
	case time.UTC:
		name = "UTC"
	case time.Local:
		name = "Local"
	}
	if len(name) > 255 {
		name = name[:255]
	}
	b = binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
	b = binary.BigEndian.AppendUint64(b, uint64(t.Unix()))
	b = binary.BigEndian.AppendUint32(b, uint32(int32(off)))
	return append(b, name...)
}

// exactTimeMin is the shortest exact time extension: no zone name.
const exactTimeMin = 16

// parseExactTime reads the data of an exact time extension.
func parseExactTime(b []byte) (time.Time, bool) {
	if len(b) < exactTimeMin || len(b) > exactTimeMin+255 {
		return time.Time{}, false
	}
	nsec := binary.BigEndian.Uint32(b)
	sec := int64(binary.BigEndian.Uint64(b[4:]))
	if nsec >= 1e9 || sec > maxTimestampSec || sec < -maxTimestampSec {
		return time.Time{}, false
	}
	off := int(int32(binary.BigEndian.Uint32(b[12:])))
	name := string(b[16:])
	t := time.Unix(sec, int64(nsec))
	switch {
	case name == "UTC" && off == 0:
		return t.UTC(), true
	case name == "Local":
		if _, lo := t.Zone(); lo == off { // t is in Local
			return t, true
		}
	}
	return t.In(time.FixedZone(name, off)), true
}

func decodeTime(d *msgpack.Decoder, v reflect.Value, extLen int) error {
	if extLen > exactTimeMin+255 {
		return fmt.Errorf("msgpack: invalid ext len=%d decoding time", extLen)
	}
	var buf [exactTimeMin + 255]byte
	b := buf[:extLen]
	if err := d.ReadFull(b); err != nil {
		return err
	}
	var t time.Time
	if sec, nsec, ok := parseTimestamp(b); ok {
		t = time.Unix(sec, int64(nsec))
		if t.IsZero() {
			t = t.UTC() // as the library does: the zero time has no zone
		}
	} else if t, ok = parseExactTime(b); !ok {
		return fmt.Errorf("msgpack: invalid ext len=%d decoding time", extLen)
	}
	v.Set(reflect.ValueOf(t))
	return nil
}

// appendExactTimeExt appends t as a whole exact time extension (the
// library's Encode writes a time.Time itself, not through the registry).
func appendExactTimeExt(dst []byte, t time.Time) []byte {
	var buf [exactTimeMin + 255]byte
	data := appendExactTime(buf[:0], t)
	return append(appendExtHeader(dst, extTimestamp, uint64(len(data))), data...)
}

// exactTimeValue decodes an exact time extension at the start of b (the
// library's Decode reads a *time.Time itself, not through the registry),
// and returns the bytes it took.
func exactTimeValue(b []byte) (time.Time, int, bool) {
	if len(b) < 3 {
		return time.Time{}, 0, false
	}
	var l, hdr int
	switch b[0] {
	case 0xd8: // fixext 16
		l, hdr = 16, 2
	case 0xc7: // ext 8
		l, hdr = int(b[1]), 3
	default:
		return time.Time{}, 0, false
	}
	if int8(b[hdr-1]) != extTimestamp || len(b) < hdr+l {
		return time.Time{}, 0, false
	}
	t, ok := parseExactTime(b[hdr : hdr+l])
	return t, hdr + l, ok
}
