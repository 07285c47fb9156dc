// Package bad has types gen must refuse.
package bad

type Shape interface{ Area() float64 }

type Box[T any] struct{ v T }

type Real struct{}

type Alias = Real

type Taken struct{}

// TakenProxy is the name the stubs for Taken would declare.
type TakenProxy struct{}

type Broken struct{}

func (*Broken) Get() Missing { return nil }
