package errid

// Also returns a sentinel error with message msg that errors.Is also
// matches against target: a higher layer's name for a condition that a
// lower layer names too (procxy.ErrClosed is also rpc.ErrClosed).
func Also(msg string, target error) error { return &also{msg, target} }

type also struct {
	msg    string
	target error
}

func (e *also) Error() string        { return e.msg }
func (e *also) Is(target error) bool { return target == e.target }
