package transport

import "golang.org/x/sys/unix"

// socketpairCloexec creates the pair with SOCK_CLOEXEC, so no fork can copy
// the descriptors before they are marked close-on-exec.
func socketpairCloexec() ([2]int, error) {
	return unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
}
