//go:generate procxy gen -type Source

// Package streams has every stream shape, and results that look like
// streams but are not.
package streams

import (
	"context"
	"iter"
)

type Source struct{}

type Record struct{ ID int }

type Event struct{ Name string }

// Ticks is a named channel type: still a stream.
type Ticks <-chan int

func (Source) Count(n int) iter.Seq[int] { return nil }

func (*Source) Fails(ctx context.Context, n int) iter.Seq2[string, error] { return nil }

func (*Source) Letters(s string) <-chan string { return nil }

func (*Source) Both(n int) chan []byte { return nil }

func (*Source) Open(name string) (iter.Seq[Record], error) { return nil, nil }

func (*Source) Watch(ctx context.Context) (<-chan Event, error) { return nil, nil }

func (*Source) Ticker() Ticks { return nil }

// Pairs is a func result, not a stream: the second value is not an error.
func (*Source) Pairs() iter.Seq2[string, int] { return nil }

func (*Source) Sink() chan<- int { return nil }

func (*Source) Callback() func() { return nil }
