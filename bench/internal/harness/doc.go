// Package harness runs echo servers in a child process and measures their
// clients from the parent, for cmd/rpcbench and this package's benchmarks.
//
// The benchmark binary re-executes itself (os.Args[0]) with [EnvRole]
// naming the server to run; [MaybeChild] at the top of main (or TestMain)
// turns that process into the server. Each contender ([Contenders]) is one
// RPC stack over one transport behind the [Client] interface: an echo of
// the bytes it is sent. [Run] measures one contender: sequential latency
// percentiles, throughput with many calls in flight, a 10 MiB echo, and
// client-side allocations per call.
//
// The call section ([CallContenders], [RunCall]) measures one proxied method
// call, Add(a, b int) int, including through procxy's object proxy: the
// package registers [Calculator] with procxy.Register, so a binary using it
// must call procxy.Main before [MaybeChild] (procxy.New re-runs the binary
// with PROCXY_CHILD set, not [EnvRole]).
package harness
