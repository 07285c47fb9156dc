package cli

import (
	"syscall"

	"github.com/procxy/procxy/childproc"
)

// dieWithParent makes a reply command die with procxy, even when procxy
// is killed and cannot stop it.
func dieWithParent(o *childproc.Options) { o.Pdeathsig = syscall.SIGKILL }
