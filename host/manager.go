package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// ManagerOptions configures a Manager. The zero value is valid.
type ManagerOptions struct {
	// OnChange, when set, is called for every state change of every
	// registered module, in order, on one goroutine owned by the Manager and
	// never while a lock is held; independently of each module's own
	// Config.OnChange.
	OnChange func(Change)
}

// Manager keeps a set of modules by name (Procwire's ModuleManager): it
// spawns and shuts them down together and reports all their state changes
// in one place. It is safe for concurrent use. The zero Manager is not
// usable; call NewManager.
type Manager struct {
	opts    ManagerOptions
	changes notifier

	mu      sync.Mutex
	modules map[string]*Module // guarded by mu
	order   []string           // registration order; guarded by mu
}

// NewManager returns an empty Manager.
func NewManager(opts ManagerOptions) *Manager {
	mg := &Manager{opts: opts, modules: map[string]*Module{}}
	mg.changes.fn = func(c Change) {
		if mg.opts.OnChange != nil {
			mg.opts.OnChange(c)
		}
	}
	return mg
}

// Register adds m. It fails with ErrDuplicate when the name is taken, and
// when m is registered with another Manager.
func (mg *Manager) Register(m *Module) error {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	if _, ok := mg.modules[m.Name()]; ok {
		return fmt.Errorf("%w: %q is registered", ErrDuplicate, m.Name())
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mgr != nil {
		return fmt.Errorf("%w: module %q belongs to another manager", ErrDuplicate, m.Name())
	}
	m.mgr = mg
	mg.modules[m.Name()] = m
	mg.order = append(mg.order, m.Name())
	return nil
}

// Unregister shuts the named module down (see Module.Shutdown) and
// removes it. Unknown names are not an error.
func (mg *Manager) Unregister(ctx context.Context, name string) error {
	mg.mu.Lock()
	m := mg.modules[name]
	if m == nil {
		mg.mu.Unlock()
		return nil
	}
	delete(mg.modules, name)
	for i, n := range mg.order {
		if n == name {
			mg.order = append(mg.order[:i:i], mg.order[i+1:]...)
			break
		}
	}
	mg.mu.Unlock()
	err := m.Shutdown(ctx)
	m.mu.Lock()
	m.mgr = nil
	m.mu.Unlock()
	return err
}

// Module returns the module registered under name, or nil.
func (mg *Manager) Module(name string) *Module {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	return mg.modules[name]
}

// Modules returns the registered modules in registration order.
func (mg *Manager) Modules() []*Module {
	mg.mu.Lock()
	defer mg.mu.Unlock()
	out := make([]*Module, len(mg.order))
	for i, n := range mg.order {
		out[i] = mg.modules[n]
	}
	return out
}

// Spawn spawns every registered module concurrently (see Module.Spawn)
// and returns once all are ready or have failed, with their errors joined.
func (mg *Manager) Spawn(ctx context.Context) error {
	return mg.each(func(m *Module) error { return m.Spawn(ctx) })
}

// Shutdown shuts every registered module down concurrently (see
// Module.Shutdown). The modules stay registered.
func (mg *Manager) Shutdown(ctx context.Context) error {
	return mg.each(func(m *Module) error { return m.Shutdown(ctx) })
}

func (mg *Manager) each(fn func(*Module) error) error {
	mods := mg.Modules()
	errs := make([]error, len(mods))
	var wg sync.WaitGroup
	for i, m := range mods {
		wg.Go(func() { errs[i] = fn(m) })
	}
	wg.Wait()
	return errors.Join(errs...)
}
