// Package shape holds the rules for which method shapes procxy can call
// in another process. The runtime (procxy's method.go, by reflection) and
// procxy gen (internal/gen, from go/types) both describe a method's
// parameters and results as Kinds and ask Check, so they agree.
package shape

import "fmt"

// Kind is what a parameter or result is, as far as the rules go.
type Kind uint8

const (
	Value      Kind = iota // anything that travels as a value
	Context                // context.Context
	Error                  // error
	Func                   // a func parameter: it travels as a callback
	Stream                 // a stream result: iter.Seq[V], iter.Seq2[V, error], <-chan V
	Unsendable             // a result that can never be sent: a func, a send-only channel
)

// Sig is a method's signature without its receiver. For a variadic
// method, the last of Params is the kind of its elements.
type Sig struct {
	Params   []Kind
	Variadic bool
	Results  []Kind
	// ResultTypes names the results as Go writes them, for messages.
	ResultTypes []string
}

// Shape is how a callable method is called, or why it cannot be.
type Shape struct {
	WithCtx bool   // the first parameter is a context.Context, which the caller's ctx fills
	Value   bool   // it has a value result
	WithErr bool   // its last result is an error
	Stream  bool   // its value result is a stream
	Problem string // why it cannot be called; "" if it can
}

// Check applies the rules to s.
func Check(s Sig) Shape {
	var sh Shape
	params := s.Params
	if len(params) > 0 && params[0] == Context {
		sh.WithCtx = true
		params = params[1:]
	}
	funcs := false
	for i, k := range params {
		last := s.Variadic && i == len(params)-1
		switch {
		case k == Context:
			sh.Problem = "context.Context is only recognised as the first parameter"
			return sh
		case last && k == Error:
			sh.Problem = "a ...error parameter is not supported"
			return sh
		case last && k == Func:
			sh.Problem = "a ...func parameter is not supported"
			return sh
		case k == Func:
			funcs = true
		}
	}
	switch len(s.Results) {
	case 0:
	case 1:
		if s.Results[0] == Error {
			sh.WithErr = true
		} else {
			sh.Value = true
		}
	case 2:
		if s.Results[1] != Error {
			sh.Problem = fmt.Sprintf("its second result is %s, want error", s.ResultTypes[1])
			return sh
		}
		sh.Value, sh.WithErr = true, true
	default:
		sh.Problem = fmt.Sprintf("it has %d results; want at most a value and an error", len(s.Results))
		return sh
	}
	if sh.Value {
		switch s.Results[0] {
		case Stream:
			sh.Stream = true
		case Unsendable:
			sh.Problem = fmt.Sprintf("its %s result cannot be sent to another process", s.ResultTypes[0])
			return sh
		}
	}
	if sh.Stream && funcs {
		sh.Problem = "a method that returns a stream cannot take a func"
	}
	return sh
}
