// Package wire is the Procwire v2 data-plane framing: an 11-byte big-endian
// header (method id, flags, request id, payload length) followed by the
// payload.
//
//	offset 0  uint16  method id   (0 invalid, 0xFFFE auth, 0xFFFF abort)
//	offset 2  uint8   flags       (see [Flags]; bits 6 and 7 must be zero,
//	                              except procxy's FlagLane between peers that allow it)
//	offset 3  uint32  request id  (0 = no correlation)
//	offset 7  uint32  payload length
//	offset 11 payload
//
// [Reader] checks every header before it waits for or allocates the payload,
// reuses its buffer for small frames and hands large payloads over without a
// second copy — into a destination its owner chooses, if it likes. A read
// interrupted by a deadline loses nothing, so several goroutines can take
// turns reading one connection. [Writer] writes each frame's header and
// payload together (a payload in several parts with one writev), coalesces
// frames from concurrent goroutines into fewer system calls, and can queue
// replies to send with the next write.
//
// The package is pure code: it starts no goroutines and knows nothing of
// requests, codecs or processes.
//
// Section numbers (§) in this package's comments refer to docs/PROCWIRE.md, the
// Procwire facts procxy implements.
package wire
