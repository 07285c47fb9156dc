package procxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/procxy/procxy"
)

// Values has a method for each kind of value and error the proxy must
// carry as a local call would.
type Values struct{}

type ValOpts struct{ N int }

// NotFoundError is a typed error registered with RegisterErrorType.
type NotFoundError struct {
	Key   string
	Tries int
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s not found after %d tries", e.Key, e.Tries)
}

// UnregisteredError is a typed error nobody registered.
type UnregisteredError struct{ Key string }

func (e *UnregisteredError) Error() string { return "unregistered " + e.Key }

// ErrQuota is a sentinel registered with RegisterError.
var ErrQuota = errors.New("values: quota exceeded")

func init() {
	procxy.Register[Values](nil)
	procxy.RegisterError(ErrQuota)
	procxy.RegisterErrorType[*NotFoundError]()
}

func (Values) Ptr(o *ValOpts) string {
	if o == nil {
		return "nil"
	}
	return fmt.Sprint(o.N)
}
func (Values) Slice(s []int) bool        { return s == nil }
func (Values) Map(m map[string]int) bool { return m == nil }
func (Values) Any(v any) bool            { return v == nil }
func (Values) Err(e error) string {
	if e == nil {
		return "nil"
	}
	var nf *NotFoundError
	return fmt.Sprintf("%v; EOF %v; NotFound %v", e, errors.Is(e, io.EOF), errors.As(e, &nf) && nf.Key == "k")
}
func (Values) Int8(x int8) int8       { return x }
func (Values) Uint(x uint) uint       { return x }
func (Values) Int(x int) int          { return x }
func (Values) Float32(x float32) bool { return x == float32(0.1) }
func (Values) Add(a, b int) int       { return a + b }

// Fail returns the error named by what, wrapped as an application would.
func (Values) Fail(ctx context.Context, what string) error {
	var err error
	switch what {
	case "open":
		_, err = os.Open("/nonexistent/cfg")
	case "notexist":
		err = fs.ErrNotExist
	case "permission":
		err = fs.ErrPermission
	case "eof":
		err = io.EOF
	case "canceled":
		err = context.Canceled
	case "deadline":
		err = context.DeadlineExceeded
	case "osdeadline":
		err = os.ErrDeadlineExceeded
	case "quota":
		err = ErrQuota
	case "notfound":
		err = &NotFoundError{Key: "k", Tries: 3}
	case "unregistered":
		err = &UnregisteredError{Key: "k"}
	}
	return fmt.Errorf("values: %s: %w", what, err)
}

func newValues(t *testing.T) *procxy.Proxy[Values] {
	t.Helper()
	p, err := procxy.New[Values](t.Context(), procxy.Logger(childLog(t)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

var valuesFunc = procxy.Func("values.ptr", func(_ context.Context, o *ValOpts) (string, error) {
	if o == nil {
		return "nil", nil
	}
	return fmt.Sprint(o.N), nil
})

var valuesFail = procxy.Func("values.fail", func(_ context.Context, what string) (int, error) {
	return 0, fmt.Errorf("values: %s: %w", what, io.EOF)
})

func TestErrorIdentity(t *testing.T) {
	p := newValues(t)
	for _, c := range []struct {
		what string
		is   error
		text string
	}{
		{"open", fs.ErrNotExist, "procxy: Values.Fail: values: open: open /nonexistent/cfg: no such file or directory"},
		{"notexist", fs.ErrNotExist, "procxy: Values.Fail: values: notexist: file does not exist"},
		{"permission", fs.ErrPermission, "procxy: Values.Fail: values: permission: permission denied"},
		{"eof", io.EOF, "procxy: Values.Fail: values: eof: EOF"},
		{"canceled", context.Canceled, "procxy: Values.Fail: values: canceled: context canceled"},
		{"deadline", context.DeadlineExceeded, "procxy: Values.Fail: values: deadline: context deadline exceeded"},
		{"osdeadline", os.ErrDeadlineExceeded, "procxy: Values.Fail: values: osdeadline: i/o timeout"},
		{"quota", ErrQuota, "procxy: Values.Fail: values: quota: values: quota exceeded"},
	} {
		t.Run(c.what, func(t *testing.T) {
			_, err := procxy.Call[struct{}](t.Context(), p, "Fail", c.what)
			if !errors.Is(err, c.is) {
				t.Errorf("errors.Is(%v, %v) = false, want true", err, c.is)
			}
			if err == nil || err.Error() != c.text {
				t.Errorf("got %q, want %q", err, c.text)
			}
			var re *procxy.RemoteError
			if !errors.As(err, &re) || !strings.Contains(re.Stack, "procxy_test.Values.Fail in pid") ||
				!strings.Contains(re.Stack, "values_test.go:") {
				t.Errorf("stack of %v: %q; want where the error left the child", err, re.Stack)
			}
		})
	}
	t.Run("errno", func(t *testing.T) {
		_, err := procxy.Call[struct{}](t.Context(), p, "Fail", "open")
		var errno syscall.Errno
		if !errors.As(err, &errno) || errno != syscall.ENOENT {
			t.Errorf("errors.As(%v, *syscall.Errno) = %v; want ENOENT", err, errno)
		}
	})
	t.Run("registered type", func(t *testing.T) {
		_, err := procxy.Call[struct{}](t.Context(), p, "Fail", "notfound")
		var nf *NotFoundError
		if !errors.As(err, &nf) || *nf != (NotFoundError{Key: "k", Tries: 3}) {
			t.Errorf("errors.As(%v, *NotFoundError) gives %+v; want {k 3}", err, nf)
		}
		if want := "procxy: Values.Fail: values: notfound: k not found after 3 tries"; err.Error() != want {
			t.Errorf("got %q, want %q", err, want)
		}
	})
	t.Run("unregistered type", func(t *testing.T) {
		_, err := procxy.Call[struct{}](t.Context(), p, "Fail", "unregistered")
		var ue *UnregisteredError
		var re *procxy.RemoteError
		if errors.As(err, &ue) || !errors.As(err, &re) || re.Name != "*fmt.wrapError" {
			t.Errorf("got %#v; want a *RemoteError that is not an *UnregisteredError", err)
		}
		if want := "procxy: Values.Fail: values: unregistered: unregistered k"; err.Error() != want {
			t.Errorf("got %q, want %q", err, want)
		}
	})
	t.Run("error argument", func(t *testing.T) {
		for _, c := range []struct {
			arg  error
			want string
		}{
			{nil, "nil"},
			{fmt.Errorf("read: %w", io.EOF), "read: EOF; EOF true; NotFound false"},
			{&NotFoundError{Key: "k", Tries: 1}, "k not found after 1 tries; EOF false; NotFound true"},
		} {
			got, err := procxy.Call[string](t.Context(), p, "Err", c.arg)
			if err != nil || got != c.want {
				t.Errorf("Err(%v) = %q, %v; want %q", c.arg, got, err, c.want)
			}
		}
	})
	t.Run("Func", func(t *testing.T) {
		_, err := valuesFail.Call(t.Context(), "x")
		if want := "procxy: Func values.fail: values: x: EOF"; !errors.Is(err, io.EOF) || err.Error() != want {
			t.Errorf("got %q (Is EOF %v), want %q", err, errors.Is(err, io.EOF), want)
		}
		t.Cleanup(func() { valuesFail.Close() })
	})
}

func TestNilArguments(t *testing.T) {
	p := newValues(t)
	ctx := t.Context()
	for _, c := range []struct {
		method string
		arg    any
		want   any
	}{
		{"Ptr", nil, "nil"},
		{"Ptr", (*ValOpts)(nil), "nil"},
		{"Ptr", &ValOpts{N: 7}, "7"},
		{"Slice", nil, true},
		{"Slice", []int(nil), true},
		{"Map", nil, true},
		{"Map", map[string]int(nil), true},
		{"Any", nil, true},
		{"Err", nil, "nil"},
		{"Err", error(nil), "nil"},
	} {
		got, err := procxy.Call[any](ctx, p, c.method, c.arg)
		if err != nil || got != c.want {
			t.Errorf("%s(%#v) = %v, %v; want %v", c.method, c.arg, got, err, c.want)
		}
	}
	t.Cleanup(func() { valuesFunc.Close() })
	for _, arg := range []*ValOpts{nil, {N: 3}} {
		want := "nil"
		if arg != nil {
			want = "3"
		}
		if got, err := valuesFunc.Call(ctx, arg); err != nil || got != want {
			t.Errorf("Func(%v) = %q, %v; want %q", arg, got, err, want)
		}
	}
}

func TestArgumentErrors(t *testing.T) {
	p := newValues(t)
	ctx := t.Context()
	for _, c := range []struct {
		method string
		args   []any
		want   string
	}{
		{"Nope", nil, `procxy: unknown method: Values has no exported method "Nope"`},
		{"Add", []any{1}, "procxy: Values.Add: takes 2 arguments, got 1"},
		{"Int", []any{1, 2}, "procxy: Values.Int: takes 1 argument, got 2"},
		{"Add", []any{"1", "2"}, "procxy: Values.Add: argument 1 is a string, want int"},
		{"Add", []any{1, []int{2}}, "procxy: Values.Add: argument 2 is an array, want int"},
		{"Ptr", []any{"x"}, "procxy: Values.Ptr: argument 1 is a string, want *procxy_test.ValOpts"},
		{"Int8", []any{300}, "procxy: Values.Int8: argument 1: 300 does not fit in int8"},
		{"Int8", []any{-129}, "procxy: Values.Int8: argument 1: -129 does not fit in int8"},
		{"Uint", []any{-1}, "procxy: Values.Uint: argument 1: -1 does not fit in uint"},
		{"Int", []any{1.5}, "procxy: Values.Int: argument 1: 1.5 does not fit in int"},
		{"Int", []any{make(chan int)}, "procxy: Values.Int: argument 1 (chan int) cannot be sent to another process"},
	} {
		_, err := procxy.Call[any](ctx, p, c.method, c.args...)
		if err == nil || err.Error() != c.want {
			t.Errorf("%s%v: got %q, want %q", c.method, c.args, err, c.want)
		}
	}
	// Values that fit convert, as they would in Go.
	if ok, err := procxy.Call[bool](ctx, p, "Float32", 0.1); err != nil || !ok {
		t.Errorf("Float32(0.1) = %v, %v; want true", ok, err)
	}
	if got, err := procxy.Call[int8](ctx, p, "Int8", int64(-128)); err != nil || got != -128 {
		t.Errorf("Int8(-128) = %v, %v", got, err)
	}
	// A result that does not fit the caller's type.
	if _, err := procxy.Call[string](ctx, p, "Int", 1); err == nil || err.Error() != "procxy: Values.Int: the result is an int, want string" {
		t.Errorf("Int into string: got %q", err)
	}
	if _, err := procxy.Call[int8](ctx, p, "Int", 1000); err == nil || err.Error() != "procxy: Values.Int: the result 1000 does not fit in int8" {
		t.Errorf("Int 1000 into int8: got %q", err)
	}
	if _, err := valuesFunc.Call(ctx, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { valuesFunc.Close() })
	if _, err := procxy.Call[string](ctx, p, "Int", 1); !errors.Is(err, &procxy.RemoteError{Code: "bad_result"}) {
		t.Errorf("result error %v does not match its code", err)
	}
}
