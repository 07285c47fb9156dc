// Package readturn decides which goroutine reads a multiplexed connection
// next, so that a round trip costs what a raw socket costs: one write and
// one read on each side, with no goroutine handoff in between.
//
// A connection that carries many calls has one byte stream to read and many
// goroutines that wait for what arrives on it. The usual shape — one reader
// goroutine that hands each response to the caller waiting for it, and each
// request to a handler goroutine — makes every call wait for two goroutine
// wake-ups. On an idle multi-core machine each wake-up of a parked goroutine
// is also a wake-up of an idle OS thread on another core, which costs more
// than the system calls of the call itself.
//
// An [Arbiter] removes those handoffs on the common path:
//
//   - A caller waiting for its answer ([Arbiter.Wait]) reads the connection
//     itself while nobody else does, so its answer wakes it directly from the
//     network poller. Frames for others are dispatched as they come. When its
//     answer has arrived it hands the turn to another waiting caller, if any.
//   - A background reader ([Arbiter.Start], [Arbiter.Need]) reads while no
//     caller does: on a serving connection, and whenever something needs
//     frames that no caller reads (an open stream, unsolicited requests or
//     events). After it has delivered an answer and nothing needs it, it
//     gives the turn back so that the next call reads for itself.
//   - The background reader runs a short request handler inline on its own
//     goroutine ([Arbiter.BeginInline], [Arbiter.EndInline]). If the handler
//     is still running one watchdog period later (it blocks, or runs long),
//     or a caller needs to read, the turn moves on and the handler finishes
//     off the reading path.
//   - When nobody has read for a watchdog period (or a longer idle period,
//     [Config.IdlePeriod]), a background reader starts, so events, requests
//     and the end of the connection are noticed within about two periods
//     even when no call is in flight.
//
// The Arbiter knows nothing of frames: the owner supplies [Config.Step],
// which reads and dispatches one frame, and [Config.Interrupt], which makes
// a blocked Step return (for example by setting a read deadline in the
// past) so that a caller whose context ends while it reads can leave. The
// owner's reader must tolerate interrupted reads without losing data (see
// rpc/wire.Reader).
//
// The watchdog is one lazily armed timer per Arbiter. It is never armed per
// call: arming a runtime timer wakes an idle thread to watch it, which on a
// quiet machine costs as much as the handoff it replaces. A period of 1 ms
// means a blocking inline handler delays other frames by at most about 2 ms
// before reading moves on, and the owner can route handlers it has seen run
// long away from the inline path.
package readturn
