//go:build !linux

package cli

import "github.com/procxy/procxy/childproc"

// dieWithParent does nothing where there is no parent-death signal: a
// reply command outlives a procxy that is killed.
func dieWithParent(*childproc.Options) {}
