// Package otel reports procxy's calls and child processes to
// OpenTelemetry: a span for every call on each side of a process boundary
// — the child's span a child of the parent's, in one trace — and metrics
// for call durations, payload sizes and child spawns, exits and restarts.
// It depends on the OpenTelemetry API only; the SDK and exporters are the
// program's choice.
//
// Give the Observer to every layer that should report:
//
//	ob, err := otel.New(otel.Options{}) // the global providers and propagator
//	...
//	procxy.Main(procxy.Observe(ob))                      // in main, for the child's side
//	p, err := procxy.New[Counter](ctx, procxy.Observe(ob)) // the parent's side
//
// and likewise host.Config.Observer, worker.Options.Observer,
// ipc.WithObserver and rpc.Options.Observer. The package is named otel like
// the API's; import it as procxyotel where both are used.
package otel
