// Package delvetest builds a pinned dlv for tests and talks to its
// JSON-RPC API (API version 2) the way an IDE does.
package delvetest
