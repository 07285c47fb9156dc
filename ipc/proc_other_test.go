//go:build !linux

package ipc_test

import "testing"

// childMain: the process tests run on Linux only.
func childMain() bool { return false }

type noOrphans struct{ m *testing.M }

func (n noOrphans) Run() int { return n.m.Run() }
