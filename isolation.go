package procxy

import "github.com/procxy/procxy/childproc"

// Isolation options limit what a child may use and do. They reduce the
// damage a misbehaving child can do to the machine; they are not a sandbox
// (docs/ISOLATION.md says what they do and do not protect against). All of
// them need Linux: elsewhere New, NewPool and the first call of a Func fail
// with an error wrapping errors.ErrUnsupported. They apply to the children
// procxy starts, not to a child reached through PROCXY_ATTACH or to the
// workers of a Remote.

// isolation is what the isolation options set; the zero value is none.
type isolation struct {
	limits     childproc.Limits
	credential *childproc.Credential
	noNewPrivs bool
}

// Limits runs each child under the resource limits l (setrlimit), in force
// before the child's first instruction. A child that breaches one ends
// (the kernel kills it at the CPU limit; Go reports an address-space or
// data limit as "fatal error: runtime: out of memory"), and calls on it
// fail with an *ExitError as for any crash; a Pool replaces it.
// A Go child needs some hundreds of MiB of address space to start, and
// one built with -race a few GiB. Later Limits options replace earlier ones.
func Limits(l childproc.Limits) Option {
	return optionFunc(func(o *options) { o.isolation.limits = l })
}

// RunAs runs each child as user uid and group gid, without supplementary
// groups. The parent needs the privilege to change ids (root, or
// CAP_SETUID and CAP_SETGID), else starting the child fails with an error
// matching os.ErrPermission. Limits apply to such a child too, without
// CAP_SYS_RESOURCE. The child's executable and working directory must be
// accessible to that user.
func RunAs(uid, gid uint32) Option {
	return optionFunc(func(o *options) { o.isolation.credential = &childproc.Credential{UID: uid, GID: gid} })
}

// NoNewPrivs starts each child with no_new_privs set: neither it nor
// anything it runs can gain privileges through set-user-id executables or
// file capabilities.
func NoNewPrivs() Option {
	return optionFunc(func(o *options) { o.isolation.noNewPrivs = true })
}

// isolate returns c with the isolation options applied.
func (o *options) isolate(c childproc.Options) childproc.Options {
	c.Limits = o.isolation.limits
	c.Credential = o.isolation.credential
	c.NoNewPrivs = o.isolation.noNewPrivs
	return c
}
