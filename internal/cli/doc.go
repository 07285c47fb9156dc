// Package cli is the procxy command. [Run] parses the arguments and runs
// one of its subcommands:
//
//   - list, describe, call, stream and bench start any Procwire worker from
//     the command line given after "--", read the methods and events its
//     $init line announces (through package host: a module that declares
//     no methods, [host.Module.InitSchema] and [host.Module.Invoke]), and
//     list them, call one with JSON converted to and from its codec, or
//     load-test it;
//   - gen writes typed stubs for go:generate, demo is a short tour of the
//     library, version and help print what they say.
//
// Errors are one line; [ExitCode] maps them to the documented exit
// statuses. The plotting, progress bar and terminal modules
// are used here only: deps_test.go keeps them out of the library.
//
// The demo constructs a [Worker] in a child process. The child is the same
// executable re-run, so a binary that calls [Run] must call procxy.Main
// first thing in main (and a test binary, first thing in TestMain).
package cli
