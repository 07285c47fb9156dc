// Package worker is the child side of Procwire: a Go program spawned by a
// Procwire parent — the Node.js @procwire/core ModuleManager, or procxy's
// host — that serves methods and emits events to it.
//
// # Writing a worker
//
// Register methods with a generic function per response kind, then run:
//
//	func main() {
//		w := worker.New(worker.Options{})
//		progress := worker.Event[Progress](w, "progress")
//		worker.Result(w, "resize", func(ctx context.Context, in Image) (Image, error) { … })
//		worker.Stream(w, "tiles", func(ctx context.Context, in Image, send func(Tile) error) error { … })
//		worker.Ack(w, "enqueue", func(ctx context.Context, in Job) (Receipt, error) { … })
//		worker.None(w, "log", func(ctx context.Context, line string) error { … })
//		worker.Result(w, "blob", func(ctx context.Context, b []byte) ([]byte, error) { … },
//			worker.WithCodec(codec.Raw))
//		if err := w.Run(context.Background()); err != nil {
//			os.Exit(1)
//		}
//	}
//
// Method ids are 1, 2, … in registration order and event ids 1, 2, …
// separately; the parent learns them from the $init line and matches methods
// and events by name, so a Node parent declares the same names, response
// kinds and codecs (codecs are never announced; msgpack is the default).
// Every handler runs in its own goroutine with a context that is cancelled
// when the parent aborts the call or the session ends. A handler's error
// reaches the parent as an error response whose message is err.Error()
// (return a *rpc.RemoteError to set a code too); a panic becomes an error
// response with the stack, never a crash; and a request whose payload does
// not decode gets an error response, where the reference child would die.
//
// # The session
//
// [Worker.Run] follows the reference child (protocol §3.1, §3.5): it listens
// on a private Unix socket, then writes $init on stdout; it answers $ping
// with $pong; it adopts exactly one connection (after checking the auth
// frame when PROCWIRE_TOKEN is set) and stops listening; and it returns —
// so main can exit 0 — on $shutdown, at the end of stdin (the parent died)
// or when the connection is lost, cancelling running handlers first.
// stdout carries control lines only; logs go to [Options.Logger] (stderr by
// default).
//
// # Differences from the reference child
//
//   - A data-less ack with msgpack is sent as nil (c0), not as an empty
//     payload, which the reference parent fails to decode (§6.5, §13.4).
//   - Handler errors are sent as a msgpack map {message, name, code, stack}
//     rather than a bare string; the Node parent shows the message and keeps
//     the map as the error's data.
//   - An undecodable request is answered with an error frame (§13.11).
//   - A connection that does not authenticate within [Options.AuthTimeout]
//     is dropped, so a silent local process cannot hold the only slot (§13.9).
//   - The socket is "procwire-<pid>-<16 hex digits>.sock" in procxy's
//     private 0700 socket directory ([transport.SocketDir]) with mode 0600,
//     instead of a 32-hex-digit name directly in XDG_RUNTIME_DIR or TMPDIR.
//   - $ping lines longer than 64 KiB are ignored.
//
// # Protocol checklist (docs/PROCWIRE.md §10.1) and its tests
//
// Tests named Test… are in this package; TestNodeParent/… and TestRawParent…
// are in interop/nodeparent (the real @procwire/core 1.5.0 parent driving
// examples/echoworker, and a Go parent driving the same binary over stdio).
//
//	Freeze registration; ids 1.. in            TestRegisterAfterRun, TestRegisterPanics,
//	registration order, events separately      TestInitLine, TestRawParentShutdown ($init golden)
//	Socket path; remove stale file; listen,    TestInitLine (socket mode, connect right after $init);
//	then print $init                           the name is fresh and random (transport.ListenPrivate)
//	Only $init and $pong on stdout             TestControlLines, TestRawParentShutdown
//	stdin: $ping → $pong; $shutdown → close    TestControlLines, TestShutdown, TestStdinEOF,
//	conn and listener, remove file, exit;      TestRawParentShutdown, TestRawParentStdinEOF,
//	EOF → same; ignore the rest                TestParentDeath, TestNodeParent/heartbeat, /shutdown
//	PROCWIRE_TOKEN → AUTH must be first        TestAuth, TestAuthEnv, TestAuthPending,
//	                                           TestNodeParent/spawn (auth:true), /badauth, /noauth
//	Exactly one connection; close extras;      TestSingleConnection, TestAuthPending,
//	stop listening on adoption; no reconnect   TestConnectionLost, TestRawParentConnLost
//	Validate each header before the payload;   TestInvalidHeaders (X01–X04, MaxPayload)
//	drop the connection; configurable limit
//	Dispatch: ignore 0xFFFE, abort 0xFFFF,     TestReplies (stray AUTH, F05, id 0), TestAbort,
//	unknown id → "Unknown method ID: <id>",    TestNodeParent/concurrency
//	run handlers concurrently
//	Echo methodId and requestId (opaque)       TestReplies (F15/F16), TestNodeParent/wrap
//	Reply flags 0x03, 0x23 (c0 when no data),  TestReplies (F02, F06, ack c0, F08, F09, F04,
//	0x0B, 0x1B empty, 0x07 / 0x0F; errors      0x0F, F11, F18), TestErrorPayloads (raw method),
//	always msgpack                             TestNodeParent/fail, /count, /accept, /echoRaw
//	Nothing back for requestId 0               TestNone, TestNodeParent/notify
//	Events: event id, 0x01, id 0, only after   TestEmit, TestNone, TestReplies (F11),
//	adoption                                   TestNodeParent/notify, /abort
//	Abort: cancel the context, send nothing    TestAbort, TestNodeParent/abort
//	Connection loss: cancel in-flight          TestConnectionLost, TestNoneCancelled,
//	handlers; end the session                  TestRawParentConnLost
//	Serialize writes; block on backpressure    TestBackpressure, TestNodeParent/backpressure,
//	                                           /heartbeat (under load); rpc/wire writer tests
//	msgpack per §7.2                           rpc/codec vector tests; TestReplies (M11, D01),
//	                                           TestNodeParent/echo (Dates, Buffers, ints, floats)
//	Bad request payload → error frame          TestBadPayload
//
// Section numbers (§) in this package's comments refer to docs/PROCWIRE.md, the
// Procwire facts procxy implements.
package worker
