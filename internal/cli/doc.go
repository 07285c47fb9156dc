// Package cli is the procxy command: [Run] parses the arguments and runs
// one of its subcommands, gen (typed stubs for go:generate), demo (a short
// tour of the library) and help.
//
// The demo constructs a [Worker] in a child process. The child is the same
// executable re-run, so a binary that calls [Run] must call procxy.Main
// first thing in main (and a test binary, first thing in TestMain).
package cli
