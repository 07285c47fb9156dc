// Package observe is how procxy reports what it does — calls made and
// served on both sides of a process boundary, messages, child processes
// starting, exiting and restarting — so that metrics and tracing plug in
// without the library depending on them. Every layer takes one
// [Observer]: rpc.Options.Observer, procxy.Observe, host.Config.Observer,
// worker.Options.Observer and ipc's WithObserver. A nil Observer costs
// nothing; the OpenTelemetry adapter is the module
// github.com/procxy/procxy/otel.
//
// # Trace context
//
// A client's Observer may put a trace context (a W3C traceparent, say) into
// [Call.Carrier] in CallStart; where the connection can carry it, it
// travels with the request, and the server's Observer finds it in its
// Call.Carrier. Between procxy peers it rides in the request frame
// (docs/PROTOCOL.md, "Request metadata"); on ipc in the message headers.
// Procwire (Node.js) peers have no place for it: there Carrier is nil.
package observe
