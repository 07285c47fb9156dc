package codec

// Codec turns one application value into one payload and back.
//
// Codecs are configured independently on both sides of a connection and are
// never negotiated: both peers must agree on the codec of each method.
// Implementations are safe for concurrent use.
type Codec interface {
	// Name is a local label ("msgpack", "raw", "json"); it never travels.
	Name() string
	// Append appends the encoding of v to dst and returns the extended slice.
	Append(dst []byte, v any) ([]byte, error)
	// Unmarshal decodes data, which holds exactly one complete value, into v
	// (a non-nil pointer). It never keeps a reference to data after it
	// returns: the caller reuses the buffer.
	Unmarshal(data []byte, v any) error
}
