// Package errid keeps the identity of errors across processes: the
// well-known sentinels of the standard library and the sentinels and error
// types a program registers (procxy.RegisterError, RegisterErrorType). The
// side that returns an error lists the sentinels it matches and encodes a
// registered typed error in its tree; the side that receives it gets those
// values back, so errors.Is and errors.As work as if the call were local.
//
// Keys are what travels: a built-in sentinel's Go name ("io.EOF"), a
// registered sentinel's type and message, a registered type's import path
// and name. Both sides must register the same values; a key one side does
// not know is ignored.
package errid

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"reflect"
	"strconv"
	"sync"
	"syscall"

	"github.com/procxy/procxy/rpc/codec"
)

type sentinel struct {
	key string
	err error
}

// reg is the process's registry. Registration normally happens in init
// functions; lookups take the read lock.
var reg struct {
	mu        sync.RWMutex
	sentinels []sentinel              // in registration order; guarded by mu
	byKey     map[string]error        // guarded by mu
	types     map[string]reflect.Type // guarded by mu
	typeKeys  map[reflect.Type]string // guarded by mu
}

func init() {
	for _, s := range []sentinel{
		{"io.EOF", io.EOF}, {"io.ErrUnexpectedEOF", io.ErrUnexpectedEOF},
		{"io.ErrClosedPipe", io.ErrClosedPipe}, {"io.ErrShortWrite", io.ErrShortWrite},
		{"io.ErrShortBuffer", io.ErrShortBuffer}, {"io.ErrNoProgress", io.ErrNoProgress},
		{"fs.ErrInvalid", fs.ErrInvalid}, {"fs.ErrPermission", fs.ErrPermission},
		{"fs.ErrExist", fs.ErrExist}, {"fs.ErrNotExist", fs.ErrNotExist}, {"fs.ErrClosed", fs.ErrClosed},
		{"context.Canceled", context.Canceled}, {"context.DeadlineExceeded", context.DeadlineExceeded},
		{"os.ErrDeadlineExceeded", os.ErrDeadlineExceeded}, {"os.ErrNoDeadline", os.ErrNoDeadline},
		{"os.ErrProcessDone", os.ErrProcessDone}, {"net.ErrClosed", net.ErrClosed},
		{"errors.ErrUnsupported", errors.ErrUnsupported},
		{"strconv.ErrRange", strconv.ErrRange}, {"strconv.ErrSyntax", strconv.ErrSyntax},
	} {
		add(s.key, s.err)
	}
	addType(reflect.TypeFor[syscall.Errno]())
}

func add(key string, err error) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.byKey == nil {
		reg.byKey = make(map[string]error)
	}
	if old, dup := reg.byKey[key]; dup {
		if old == err {
			return
		}
		panic(fmt.Sprintf("procxy: RegisterError: another error is registered as %q", key))
	}
	reg.byKey[key] = err
	reg.sentinels = append(reg.sentinels, sentinel{key, err})
}

// RegisterSentinel adds err, a comparable sentinel error value, to the
// registry. It panics if err is nil or another sentinel has the same key.
func RegisterSentinel(err error) {
	if err == nil {
		panic("procxy: RegisterError(nil)")
	}
	if !reflect.TypeOf(err).Comparable() {
		panic(fmt.Sprintf("procxy: RegisterError: %T is not comparable, so errors.Is cannot match it; register it with RegisterErrorType", err))
	}
	add(fmt.Sprintf("%s:%s", typeName(reflect.TypeOf(err)), err.Error()), err)
}

// RegisterType adds the error type t to the registry.
func RegisterType(t reflect.Type) {
	if !t.Implements(reflect.TypeFor[error]()) {
		panic(fmt.Sprintf("procxy: RegisterErrorType[%v]: %v does not implement error", t, t))
	}
	addType(t)
}

func addType(t reflect.Type) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.types == nil {
		reg.types = make(map[string]reflect.Type)
		reg.typeKeys = make(map[reflect.Type]string)
	}
	key := typeName(t)
	if old, dup := reg.types[key]; dup && old != t {
		panic(fmt.Sprintf("procxy: RegisterErrorType: another type is registered as %q", key))
	}
	reg.types[key] = t
	reg.typeKeys[t] = key
}

// typeName is t with its full import path: "*example.com/app.NotFound".
func typeName(t reflect.Type) string {
	switch {
	case t.Kind() == reflect.Pointer && t.Name() == "":
		return "*" + typeName(t.Elem())
	case t.PkgPath() != "":
		return t.PkgPath() + "." + t.Name()
	}
	return t.String()
}

// Describe returns what identifies err on the wire: the keys of the
// registered sentinels it matches (errors.Is), and the first error in its
// tree of a registered type, with its key and encoding.
func Describe(err error) (is []string, typ string, val []byte) {
	if err == nil {
		return nil, "", nil
	}
	reg.mu.RLock()
	sentinels := reg.sentinels
	reg.mu.RUnlock()
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			is = append(is, s.key)
		}
	}
	walk(err, func(e error) bool {
		reg.mu.RLock()
		key, ok := reg.typeKeys[reflect.TypeOf(e)]
		reg.mu.RUnlock()
		if !ok {
			return false
		}
		b, ok := encode(e)
		if ok {
			typ, val = key, b
		}
		return ok
	})
	return is, typ, val
}

// encode encodes a typed error; numbers (syscall.Errno) as their value.
func encode(e error) (b []byte, ok bool) {
	defer func() {
		if recover() != nil { // the library panics on some types
			ok = false
		}
	}()
	var x any = e
	switch v := reflect.ValueOf(e); {
	case v.CanInt():
		x = v.Int()
	case v.CanUint():
		x = v.Uint()
	}
	b, err := codec.Msgpack.Append(nil, x)
	return b, err == nil
}

// walk calls fn on each error in err's tree, depth first as errors.As
// does, until fn returns true.
func walk(err error, fn func(error) bool) bool {
	for depth := 0; err != nil && depth < 100; depth++ {
		if fn(err) {
			return true
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			err = u.Unwrap()
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				if walk(e, fn) {
					return true
				}
			}
			return false
		default:
			return false
		}
	}
	return false
}

// Decode rebuilds the identity Describe described: the registered typed
// error and the sentinels, joined; nil when none of it is known here.
func Decode(is []string, typ string, val []byte) error {
	var errs []error
	reg.mu.RLock()
	t := reg.types[typ]
	for _, k := range is {
		if e, ok := reg.byKey[k]; ok {
			errs = append(errs, e)
		}
	}
	reg.mu.RUnlock()
	if t != nil && len(val) > 0 {
		var p reflect.Value
		if t.Kind() == reflect.Pointer {
			p = reflect.New(t.Elem())
		} else {
			p = reflect.New(t)
		}
		if codec.Msgpack.Unmarshal(val, p.Interface()) == nil {
			if t.Kind() != reflect.Pointer {
				p = p.Elem()
			}
			errs = append([]error{p.Interface().(error)}, errs...)
		}
	}
	switch len(errs) {
	case 0:
		return nil
	case 1:
		return errs[0]
	}
	return multi(errs)
}

// multi matches each of its errors, like errors.Join, without a message
// of its own: the RemoteError that holds it has the message.
type multi []error

func (m multi) Error() string   { return errors.Join(m...).Error() }
func (m multi) Unwrap() []error { return m }
