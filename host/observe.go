package host

import (
	"time"

	"github.com/procxy/procxy/observe"
)

// observeChild reports a child event to Config.Observer. It is never called
// with the module's lock held.
func (m *Module) observeChild(kind observe.ChildKind, pid int, err error) {
	if ob := m.cfg.Observer; ob != nil {
		ob.Child(observe.ChildEvent{Kind: kind, Service: m.cfg.Name, PID: pid, Err: err, Time: time.Now()})
	}
}

// observeExit reports a child's exit; one that Shutdown asked for has no
// error.
func (m *Module) observeExit(pid int, err error, asked bool) {
	if asked {
		err = nil
	}
	m.observeChild(observe.ChildExit, pid, err)
}
