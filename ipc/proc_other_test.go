//go:build !linux

package ipc_test

// childMain: the process tests run on Linux only.
func childMain() bool { return false }
