package rpc_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
	"testing"

	"github.com/procxy/procxy/rpc"
)

// TestErrorIdentityWire: the standard library's well-known sentinels and
// syscall.Errno survive AppendError and DecodeError, also when the decoded
// error is sent on again; a plain error keeps only its message.
func TestErrorIdentityWire(t *testing.T) {
	_, openErr := os.Open("/nonexistent/x")
	for _, tt := range []struct {
		name string
		err  error
		is   []error
	}{
		{"eof", fmt.Errorf("read: %w", io.EOF), []error{io.EOF}},
		{"path", openErr, []error{fs.ErrNotExist, syscall.ENOENT}},
		{"canceled", context.Canceled, []error{context.Canceled}},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), []error{context.DeadlineExceeded}},
		{"plain", errors.New("plain"), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := rpc.DecodeError(rpc.AppendError(nil, tt.err))
			again := rpc.DecodeError(rpc.AppendError(nil, got)) // forwarded by a middle process
			for _, err := range []error{got, again} {
				var re *rpc.RemoteError
				if !errors.As(err, &re) || re.Message != tt.err.Error() {
					t.Fatalf("got %#v, want a RemoteError with message %q", err, tt.err.Error())
				}
				for _, target := range tt.is {
					if !errors.Is(err, target) {
						t.Errorf("errors.Is(%v, %v) = false", err, target)
					}
				}
				if len(tt.is) == 0 && re.Err != nil {
					t.Errorf("plain error decoded with identity %v", re.Err)
				}
			}
		})
	}
}
