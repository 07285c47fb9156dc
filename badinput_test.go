package procxy_test

import (
	"context"
	"errors"
	"testing"

	"github.com/procxy/procxy"
)

var anyLen = procxy.Func("anyLen", func(_ context.Context, v any) (int, error) {
	if v == nil {
		return 0, &UnregisteredError{Key: "nil"}
	}
	return 1, nil
})

// TestFuncBadInput: the exact errors a Func's caller gets for an input
// that cannot be sent and for an error type nobody registered. (A Func's
// input and result are typed: the count, the type and the range cannot be
// wrong.)
func TestFuncBadInput(t *testing.T) {
	defer anyLen.Close()
	ctx := t.Context()
	_, err := anyLen.Call(ctx, make(chan int))
	if want := "procxy: Func anyLen: the input (chan int) cannot be sent to another process"; err == nil || err.Error() != want {
		t.Errorf("chan input: %v\nwant %s", err, want)
	}
	_, err = anyLen.Call(ctx, nil)
	var ue *UnregisteredError
	if want := "procxy: Func anyLen: unregistered nil"; err == nil || err.Error() != want || errors.As(err, &ue) {
		t.Errorf("unregistered error type: %v\nwant %s (and no *UnregisteredError)", err, want)
	}
}
