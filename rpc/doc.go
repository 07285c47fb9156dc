// Package rpc is procxy's multiplexed peer engine: one [Conn] per byte
// stream, speaking Procwire v2 frames (package wire) with payloads encoded by
// a codec (package codec). It knows nothing of processes, so it runs over a
// socket, a pipe or anything else that is an io.ReadWriteCloser.
//
// # Calling
//
// [Conn.Call] sends a request and waits for its result or ack; [OpenStream]
// and [StreamOf] receive a stream of chunks; [Conn.Send] is fire-and-forget.
// Every call takes a context: cancelling it sends an abort frame to the peer
// and returns at once. Failures of the remote handler arrive as
// *[RemoteError]; when the connection dies, every pending call and open
// stream fails at once with an error wrapping [ErrClosed] and the cause.
//
// # Serving
//
// A [Mux] maps method ids to handlers built with [ResultFunc], [AckFunc],
// [StreamFunc] and [SendFunc]. Requests run concurrently, each with a
// context that is cancelled when the peer aborts the call or the connection
// ends. A handler panic is returned to the caller as a RemoteError carrying
// the stack; it never takes the connection down. Events and fire-and-forget
// frames sent by a child are delivered in order on one goroutine.
//
// # Ending
//
// [Conn.Close] ends the connection at once and waits for the Conn's
// goroutines, handlers included. [Conn.Shutdown] ends it gracefully within
// a context: it refuses new calls on both sides ([ErrShuttingDown] for the
// peer's), lets the calls in flight finish, then closes; when the context
// ends first it closes at once and returns without waiting for handlers
// that ignore their cancelled context.
//
// # Speed
//
// A Conn has no reader goroutine that every frame passes through: a caller
// waiting for its answer reads the connection itself while no one else does,
// and a quick handler runs on the goroutine that read its request, so a
// sequential call costs one write and one read on each side, with no
// goroutine handoff (see docs/ARCHITECTURE.md). Large payloads are not copied
// on the way: []byte values are written from where they are, a *[]byte
// result with room is filled straight from the connection, and a handler
// taking a [Payload] serves a request's bytes in place. Between procxy peers
// on one host, [Options.SharedMemory] moves large payloads through shared
// memory.
//
// # Flow control
//
// Writes block while the transport is full, so producers slow down to the
// consumer's pace. Incoming stream chunks wait in a bounded buffer; when it is
// full the connection stops reading, as the Procwire parent does. Request
// ids wrap within uint32 and skip 0 and ids still pending.
//
// Section numbers (§) in this package's comments refer to docs/PROCWIRE.md, the
// Procwire facts procxy implements.
package rpc
