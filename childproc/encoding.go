package childproc

import (
	"encoding/base64"
	"encoding/hex"
	"unicode/utf8"
)

// Encoding says how Exec, ExecFile and the blocking functions convert the
// captured output (Node's encoding option). Go strings are bytes, so the
// zero value returns the bytes unchanged; the other encodings return the
// text that Node would return, as UTF-8 bytes.
type Encoding uint8

const (
	// EncodingBuffer returns the bytes unchanged (Node's 'buffer').
	EncodingBuffer Encoding = iota
	// EncodingUTF8 replaces each invalid UTF-8 byte by U+FFFD (Node's
	// 'utf8', the default of Node's exec; not the default here).
	EncodingUTF8
	// EncodingLatin1 maps each byte to the code point of the same value
	// (Node's 'latin1' and 'binary').
	EncodingLatin1
	// EncodingHex returns lower-case hex (Node's 'hex').
	EncodingHex
	// EncodingBase64 returns standard, padded base64 (Node's 'base64').
	EncodingBase64
)

// String returns Node's name for the encoding.
func (e Encoding) String() string {
	switch e {
	case EncodingBuffer:
		return "buffer"
	case EncodingUTF8:
		return "utf8"
	case EncodingLatin1:
		return "latin1"
	case EncodingHex:
		return "hex"
	case EncodingBase64:
		return "base64"
	}
	return "unknown"
}

// apply converts b. Unknown values behave like EncodingBuffer, as unknown
// names do in Node.
func (e Encoding) apply(b []byte) []byte {
	switch e {
	case EncodingUTF8:
		if utf8.Valid(b) {
			return b
		}
		out := make([]byte, 0, len(b)+8)
		for len(b) > 0 {
			r, n := utf8.DecodeRune(b)
			out = utf8.AppendRune(out, r) // RuneError for an invalid byte
			b = b[n:]
		}
		return out
	case EncodingLatin1:
		out := make([]byte, 0, len(b))
		for _, c := range b {
			out = utf8.AppendRune(out, rune(c))
		}
		return out
	case EncodingHex:
		return hex.AppendEncode(nil, b)
	case EncodingBase64:
		return base64.StdEncoding.AppendEncode(nil, b)
	}
	return b
}
