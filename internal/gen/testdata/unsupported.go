//go:generate procxy gen -type Odd

// Package unsupported has methods that cannot be called remotely, promoted
// methods, and names that clash with procxy.Proxy's.
package unsupported

import (
	"context"

	"github.com/procxy/procxy"
)

type Base struct{}

// Hello is promoted from Base: it gets a stub.
func (Base) Hello(name string) string { return "hello " + name }

// Odd embeds an Emitter, whose Emit gets no stub.
type Odd struct {
	procxy.Emitter
	Base
}

func (*Odd) Sum(xs ...int) int { return 0 }

func (*Odd) Join(sep string, args ...string) (string, error) { return "", nil }

func (*Odd) Errs(errs ...error) {}

func (*Odd) Three() (int, int, error) { return 0, 0, nil }

func (*Odd) Pair(a int) (int, int) { return a, a }

func (*Odd) Late(n int, ctx context.Context) error { return nil }

func (*Odd) Proxy() string { return "" }

// Kill hides procxy.Proxy.Kill in the stubs.
func (*Odd) Kill(signal int) error { return nil }
