// Command debugchild is the child the Debug test runs under dlv: the test
// binary itself has no DWARF (go test strips it), so it builds this one.
package main

import (
	"fmt"
	"os"

	"github.com/procxy/procxy"
)

// Adder is constructed by the parent with its base.
type Adder struct{ Base int }

// Add is the method the test stops in.
func (a *Adder) Add(x, y int) int {
	sum := a.Base + x + y
	return sum
}

func main() {
	procxy.Register[Adder](func(base int) *Adder { return &Adder{Base: base} }, procxy.Name("debugchild.Adder"))
	procxy.Main()
	fmt.Fprintln(os.Stderr, "debugchild: start me with procxy.New")
	os.Exit(2)
}
