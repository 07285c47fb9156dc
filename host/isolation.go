package host

import (
	"fmt"

	"github.com/procxy/procxy/childproc"
)

// Isolation limits what a module's child may use and do. The zero value
// means none. Every field needs Linux: elsewhere Spawn fails with an error
// wrapping errors.ErrUnsupported. It is not a sandbox: docs/ISOLATION.md
// says what it does and does not protect against.
type Isolation struct {
	// Limits are resource limits (setrlimit) in force before the child's
	// first instruction. A child that breaches one ends, like any crash
	// (with Policy.RestartOnCrash it is restarted).
	Limits childproc.Limits
	// RunAs, when not nil, runs the child as this user and group, without
	// supplementary groups. The parent needs the privilege to change ids
	// (root, or CAP_SETUID and CAP_SETGID), else Spawn fails with an error
	// matching os.ErrPermission. Limits apply to such a child too, without
	// CAP_SYS_RESOURCE. The program and Dir must be accessible to that user.
	RunAs *childproc.Credential
	// NoNewPrivs starts the child with no_new_privs set: neither it nor
	// anything it runs can gain privileges through set-user-id executables
	// or file capabilities.
	NoNewPrivs bool
}

// resolve checks i and makes RunAs the Module's own copy.
func (i *Isolation) resolve() error {
	if l := i.Limits; l.AddressSpace < 0 || l.Data < 0 || l.CPUTime < 0 || l.OpenFiles < 0 {
		return fmt.Errorf("Isolation.Limits has a negative limit: %+v", l)
	}
	if i.RunAs != nil {
		c := *i.RunAs
		i.RunAs = &c
	}
	return nil
}

// apply sets the isolation fields of o.
func (i Isolation) apply(o *childproc.Options) {
	o.Limits = i.Limits
	o.Credential = i.RunAs
	o.NoNewPrivs = i.NoNewPrivs
}
