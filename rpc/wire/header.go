package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// HeaderSize is the size of a frame header in bytes.
const HeaderSize = 11

// Payload limits. Each side limits only what it receives.
const (
	// DefaultMaxPayload is the receive limit when none is configured (1 GiB).
	DefaultMaxPayload = 1 << 30
	// AbsoluteMaxPayload is the hard ceiling (2 GiB − 1); larger limits are clamped.
	AbsoluteMaxPayload = 1<<31 - 1
)

// Reserved method ids.
const (
	MethodInvalid uint16 = 0x0000 // rejected by every receiver
	MethodAuth    uint16 = 0xFFFE // auth frame: request id 0, payload = raw token bytes
	MethodAbort   uint16 = 0xFFFF // abort frame: request id = the call to cancel, empty payload
)

// Flags is the header's flag byte.
type Flags uint8

// Flag bits. The combinations Procwire uses are FlagToParent (event),
// Result, Error, StreamChunk, StreamError, StreamEnd and Ack below.
const (
	FlagToParent  Flags = 0x01 // frame travels child → parent
	FlagResponse  Flags = 0x02 // frame answers a request
	FlagError     Flags = 0x04 // error response (payload is always msgpack)
	FlagStream    Flags = 0x08 // stream frame: chunk, end or stream error
	FlagStreamEnd Flags = 0x10 // last frame of a stream (empty payload)
	FlagAck       Flags = 0x20 // acknowledgement instead of a full result

	// FlagsReserved must be zero; a set bit is a protocol violation.
	FlagsReserved Flags = 0xC0

	// FlagLane is procxy's shared-memory lane bit, one of the reserved bits:
	// the frame's payload lives in memory shared with the peer and the
	// socket carries a reference to it, or the frame is one of the lane's
	// control frames. Only procxy peers that both turned the lane on send
	// or accept it (see Reader.Allow); to a Procwire peer it stays a
	// reserved bit.
	FlagLane Flags = 0x40

	// FlagMeta is procxy's request-metadata bit, the other reserved bit:
	// the request's payload starts with metadata (trace context) that the
	// receiver cuts off before the handler sees the payload
	// (docs/PROTOCOL.md). Only procxy peers that both turned it on send or
	// accept it (rpc.Options.Metadata).
	FlagMeta Flags = 0x80
)

// Flag combinations sent by a child (each includes FlagToParent).
const (
	FlagsEvent       = FlagToParent                                             // 0x01
	FlagsResult      = FlagToParent | FlagResponse                              // 0x03
	FlagsError       = FlagToParent | FlagResponse | FlagError                  // 0x07
	FlagsStreamChunk = FlagToParent | FlagResponse | FlagStream                 // 0x0B
	FlagsStreamError = FlagsError | FlagStream                                  // 0x0F
	FlagsStreamEnd   = FlagToParent | FlagResponse | FlagStream | FlagStreamEnd // 0x1B
	FlagsAck         = FlagToParent | FlagResponse | FlagAck                    // 0x23
)

// Has reports whether all bits of m are set in f.
func (f Flags) Has(m Flags) bool { return f&m == m }

func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	names := [...]string{"ToParent", "Response", "Error", "Stream", "StreamEnd", "Ack", "Lane", "Reserved7"}
	var b strings.Builder
	for i, n := range names {
		if f&(1<<i) != 0 {
			if b.Len() > 0 {
				b.WriteByte('|')
			}
			b.WriteString(n)
		}
	}
	return b.String()
}

// Header is a decoded frame header.
type Header struct {
	Method uint16 // method or event id
	Flags  Flags
	ID     uint32 // request id; 0 means no correlation
	Len    uint32 // payload length in bytes
}

// Put writes h into b, which must hold at least HeaderSize bytes.
func (h Header) Put(b []byte) {
	_ = b[HeaderSize-1]
	binary.BigEndian.PutUint16(b[0:2], h.Method)
	b[2] = byte(h.Flags)
	binary.BigEndian.PutUint32(b[3:7], h.ID)
	binary.BigEndian.PutUint32(b[7:11], h.Len)
}

// Append appends the encoded header to dst.
func (h Header) Append(dst []byte) []byte {
	var b [HeaderSize]byte
	h.Put(b[:])
	return append(dst, b[:]...)
}

// ParseHeader decodes the first HeaderSize bytes of b without validating them.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("wire: header needs %d bytes, have %d: %w", HeaderSize, len(b), ErrShortHeader)
	}
	return Header{
		Method: binary.BigEndian.Uint16(b[0:2]),
		Flags:  Flags(b[2]),
		ID:     binary.BigEndian.Uint32(b[3:7]),
		Len:    binary.BigEndian.Uint32(b[7:11]),
	}, nil
}

// Errors returned for invalid headers. Each is wrapped in a *HeaderError that
// carries the offending header; all of them mean the connection must close.
var (
	ErrShortHeader     = errors.New("wire: short header")
	ErrInvalidMethod   = errors.New("wire: method id 0 is reserved")
	ErrPayloadTooLarge = errors.New("wire: payload too large")
	ErrReservedFlags   = errors.New("wire: reserved flag bits must be zero")
)

// HeaderError describes a header rejected by [Header.Validate].
type HeaderError struct {
	Header Header
	Max    int   // the receive limit in force
	Err    error // one of the ErrXxx sentinels above
}

func (e *HeaderError) Error() string {
	switch e.Err {
	case ErrPayloadTooLarge:
		return fmt.Sprintf("wire: payload too large: %d bytes, configured max: %d bytes", e.Header.Len, e.Max)
	case ErrReservedFlags:
		return fmt.Sprintf("wire: reserved flag bits must be zero, got: 0b%b", uint8(e.Header.Flags))
	}
	return e.Err.Error()
}

func (e *HeaderError) Unwrap() error { return e.Err }

// ClampMax returns the effective receive limit for a configured one: zero or
// negative means DefaultMaxPayload, and anything above AbsoluteMaxPayload is
// clamped to it.
func ClampMax(max int) int {
	switch {
	case max <= 0:
		return DefaultMaxPayload
	case max > AbsoluteMaxPayload:
		return AbsoluteMaxPayload
	}
	return max
}

// Validate applies the receive checks of Procwire §5.7 in the reference
// order: method id, payload length against max (already clamped), then the
// reserved flag bits. A non-nil result is a *HeaderError.
func (h Header) Validate(max int) error { return h.validate(max, 0) }

// validate is Validate with some reserved flag bits allowed.
func (h Header) validate(max int, allowed Flags) error {
	var err error
	switch {
	case h.Method == MethodInvalid:
		err = ErrInvalidMethod
	case uint64(h.Len) > uint64(max) || h.Len > AbsoluteMaxPayload:
		err = ErrPayloadTooLarge
	case h.Flags&FlagsReserved&^allowed != 0:
		err = ErrReservedFlags
	default:
		return nil
	}
	return &HeaderError{Header: h, Max: max, Err: err}
}
