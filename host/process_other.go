//go:build !unix

package host

import "github.com/procxy/procxy/childproc"

// Without a parent-death signal, the child learns of the parent's death
// from the EOF on its stdin.
func setProcAttrs(*childproc.Options, bool) {}
