package childproc

import "syscall"

func setPdeathsig(a *syscall.SysProcAttr, sig syscall.Signal) error {
	a.Pdeathsig = sig
	return nil
}
