// Package host is the parent side of procxy's worker protocol (Procwire
// v2): it starts worker processes, talks to them, and keeps them running.
//
// A [Module] is one worker: the program to run and the methods and events
// the parent uses, declared in a [Config], plus a [Policy] for init
// timeout, spawn retries with backoff, restart on crash, heartbeat and
// authentication. [NewModule] checks the Config; [Module.Spawn] starts the
// child and returns once it is ready; [Module.Shutdown] stops it. A
// [Manager] keeps modules by name and spawns and stops them together.
//
// # Calling
//
// [Call], [Stream] and [Send] are typed calls by method name, and
// [OnEvent] listens for the child's events:
//
//	m, err := host.NewModule(host.Config{
//		Name: "resizer",
//		Executable: "./resizer",
//		Methods: []host.Method{
//			{Name: "resize"},                         // result
//			{Name: "frames", Kind: rpc.KindStream},
//		},
//		Events: []host.Event{{Name: "progress"}},
//	})
//	if err := m.Spawn(ctx); err != nil { … }
//	defer m.Shutdown(context.Background())
//	out, err := host.Call[Image](ctx, m, "resize", req)
//	for f, err := range host.Stream[Frame](ctx, m, "frames", req) { … }
//
// Every call takes a context; cancelling it sends the child an abort frame
// and returns at once. Result and ack calls are also bounded by a timeout
// (30 s by default; the method's own, then the child's $init value, then
// the module's take precedence in that order).
//
// A tool that learns a worker's methods at run time (the procxy CLI)
// declares none: [Module.InitSchema] returns what the child announced, and
// [Module.Invoke] and [Module.InvokeStream] call any announced method with
// payloads the caller has encoded.
//
// # The child process
//
// The child runs with pipes on stdin, stdout and stderr, the parent's
// environment overlaid with Config.Env, PROCWIRE_MODULE_NAME, and
// PROCWIRE_TOKEN when Policy.Auth is set (an inherited one is removed
// otherwise). Its stdout is the control plane: the $init handshake, $error,
// and $pong. Every other stdout line and every stderr line goes to
// Config.Logger, tagged with the module's name and the stream; lines are
// bounded by [MaxLineSize] and a longer one is logged cut.
//
// The child dies with the parent: on Linux it gets SIGKILL when the parent
// dies, and everywhere its stdin reaches EOF, which Procwire workers treat
// as the end. It leads its own process group, so a kill takes its
// descendants along.
//
// # Crashes and restarts
//
// When the child exits, loses its data channel or misses its heartbeat
// while ready, every pending call fails at once with an error that wraps
// rpc.ErrClosed and the reason (an [*ExitError] with the exit status and
// the last stderr lines, [ErrConnLost] or [ErrHeartbeat]); the module
// becomes disconnected, and then, per Policy, restarts or fails. State
// changes are reported, in order, to Config.OnChange and
// ManagerOptions.OnChange as [Change] values.
//
// Config.Recycle replaces the child after a number of calls, at an age,
// over a resident-memory limit, or after a call timed out — the same
// policy as procxy's Recycling. A recycled child's replacement is a
// planned restart: it needs no RestartOnCrash and does not count against
// the restart budget; calls made meanwhile fail with [ErrNotReady]. The
// children of host and of package procxy share one supervisor, so their
// exit errors, output forwarding and stop-then-kill behave the same.
//
// The wire protocol is described in docs/PROTOCOL.md; the lifecycle
// follows docs/PROCWIRE.md §3, §4, §8 and §9.
//
// Section numbers (§) in this package's comments refer to docs/PROCWIRE.md, the
// Procwire facts procxy implements.
package host
