// Package nodeparent holds the direction-A interop tests of
// docs/PROCWIRE.md §12.2: the real Node.js parent (@procwire/core 1.5.0,
// pinned in ../package-lock.json) drives the Go echoworker
// (examples/echoworker). The Node side is parent.mjs; the Go tests build the
// worker, run the script and assert on the JSON lines it prints. They need
// node on PATH and ../node_modules (run ./scripts/test, which runs npm ci).
//
// Section numbers (§) in this package's comments refer to docs/PROCWIRE.md, the
// Procwire facts procxy implements.
package nodeparent
