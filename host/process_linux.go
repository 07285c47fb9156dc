package host

import (
	"syscall"

	"github.com/procxy/procxy/childproc"
)

func setProcAttrs(o *childproc.Options, pdeathsig bool) {
	o.ProcessGroup = true
	if pdeathsig {
		o.Pdeathsig = syscall.SIGKILL
	}
}
