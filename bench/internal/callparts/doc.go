// Package callparts holds only benchmarks: the pieces of work that procxy's
// object proxy (procxy.Call → the child's reflective handler) adds to an
// rpc-level call, each timed alone in one process. The code mirrors the
// library's paths (call.go: callOnce; child.go: handlerFor; method.go:
// decodeArgs, invoke) through public APIs, so it must be kept in step with
// them by hand. See bench/README.md, "Where the object proxy's time goes".
package callparts
