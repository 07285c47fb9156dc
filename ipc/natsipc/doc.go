// Package natsipc runs the ipc API on NATS.
package natsipc
