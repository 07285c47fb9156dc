//go:build !unix

package testproc

import "os"

// Exists reports whether a process pid exists.
func Exists(pid int) bool {
	p, err := os.FindProcess(pid)
	if err == nil {
		p.Release()
	}
	return err == nil
}
