// Package childproc starts child processes the way Node.js's child_process
// module does, and speaks Node's IPC channel in both directions. It is the
// only package in procxy that starts processes.
//
// # Starting processes
//
// [Spawn] starts a program and returns a [*Child] with its pid, stdio
// pipes, [Child.Kill] and [Child.KillGroup], and its lifecycle as Go
// values: [Child.Exited] (Node's 'exit'), [Child.Done] and [Child.Wait]
// (Node's 'close'). [Exec] and [ExecFile] run a command to the end and
// return its buffered output, bounded by Options.MaxBuffer; [SpawnSync],
// [ExecSync] and [ExecFileSync] return Node's synchronous result shapes.
// Every function takes a [context.Context]: when it ends, the child gets
// Options.KillSignal, as with Node's signal option.
//
// [Options] holds Node's options (cwd, env, argv0, stdio, detached, uid and
// gid, shell, timeout, killSignal, maxBuffer, encoding, input) plus what a
// host needs: extra files, a parent-death signal on Linux, a process group
// that [Child.KillGroup] kills as a whole, and a forced kill after a grace
// period. Its zero value means the defaults. As in Node, the program is
// looked up in the PATH of the child's environment.
//
// # Isolation (Linux)
//
// Options.Limits (setrlimit: address space, data, CPU time, open files,
// in force before the program's first instruction), Options.Credential
// and Options.NoNewPrivs limit what a child may use and do; [LimitCause]
// names the limit that most likely ended one. Children that need a
// parent-death signal, limits or no_new_privs are forked from spawner
// threads of childproc's own, which live as long as those children, so a
// child started from a goroutine locked to an OS thread does not die when
// that thread ends. docs/ISOLATION.md says what this does not protect
// against.
//
// Errors follow Node's shapes and Go's conventions: a failed start is a
// [*SpawnError] ("spawn <file> ENOENT", with syscall, path and args) that
// matches fs.ErrNotExist or fs.ErrPermission with errors.Is; a failed
// command is an [*ExecError] carrying the command and its output and
// wrapping an [*ExitError] (exit code, signal, killed, cause).
//
// # The IPC channel
//
// [Fork] starts a Node.js script with an IPC channel, and Spawn with
// Options.IPC gives one to any program. [Child.Channel] is the parent's
// end; in a program started that way (by childproc or by Node's fork),
// [Parent] returns the child's end. A [Channel] sends values with
// [Channel.Send], which blocks while the peer is not reading, and delivers
// received messages on [Channel.Messages]. [Channel.Disconnect] and the
// peer's disconnect or exit close it; [Channel.Disconnected] reports it.
//
// The channel uses Node's 'json' serialization: one JSON text per line.
// childproc never writes a line that would crash a Node peer: every line
// is valid, compact JSON, never empty, and messages whose "cmd" starts with
// "NODE_" are refused, since Node reserves them. Received lines are bounded
// by Options.MaxMessageSize before anything is allocated. Handle passing
// (Node's send(msg, handle)) and the 'advanced' serialization are not
// supported: an incoming handle is refused with NODE_HANDLE_NACK, which is
// what Node itself answers when it cannot take one.
//
// docs/childproc-parity.md maps each Node option and behaviour to its
// childproc equivalent and to the test that shows it.
//
// Section numbers (§) in this package's comments refer to docs/NODE-IPC.md, the facts of the Node.js IPC channel.
package childproc
