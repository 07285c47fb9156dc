package rpc

// AppendError appends err encoded as an error payload — the msgpack map
// {message, name, code, stack} described in docs/PROTOCOL.md — to dst. A
// *RemoteError anywhere in err's chain keeps its fields. Other layers that
// carry errors over their own messages (package ipc) use it so that an error
// crosses every procxy boundary the same way.
func AppendError(dst []byte, err error) []byte { return appendError(dst, err) }

// DecodeError turns an error payload into a *RemoteError, as a Procwire
// parent reads it. An undecodable payload gives an error saying so.
func DecodeError(payload []byte) error { return decodeError(payload) }
