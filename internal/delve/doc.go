// Package delve runs a child process under Delve's headless debugger
// (github.com/go-delve/delve), for the object proxy and for host modules:
// the command line, the environment variable that picks the children to
// debug, the address dlv announces, and stopping the debugger through its
// JSON-RPC API (net/rpc/jsonrpc, so nothing of Delve is linked in).
package delve
