// Package supervise is the one place that watches a child process for the
// packages that run them (procxy's object proxy, Pool and Func, and host's
// modules): it starts the child through childproc, forwards its output to
// slog line by line, keeps its stderr tail and Go panic report, waits for
// its exit and describes it as one *childproc.ExitError (resource limits,
// OOM kills and recycling reasons included), stops it with a grace period
// and then a kill, enforces the resident-memory and age limits, and holds
// the one restart policy (exponential backoff with jitter, from
// internal/backoff, and a sliding restart budget).
//
// What a child is for (an rpc connection, a control plane) stays with the
// caller; this package knows only processes.
package supervise
