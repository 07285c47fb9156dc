package rpc

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/procxy/procxy/internal/errid"
	"github.com/procxy/procxy/rpc/codec"
)

// Sentinel errors. Each is returned wrapped, so test with errors.Is.
var (
	// ErrClosed means the connection is closed, by Close or because it died.
	// When it died, the error also wraps the cause (io.EOF, a *wire.HeaderError, …).
	ErrClosed = errors.New("rpc: connection closed")
	// ErrNotSent marks a call that failed before its request was written:
	// the peer provably never saw it, so it is safe to retry elsewhere.
	ErrNotSent = errors.New("rpc: request not sent")
	// ErrAuthWrite means a parent's auth frame could not be written; the
	// connection is closed and Err returns an error wrapping it.
	ErrAuthWrite = errors.New("rpc: cannot write the auth frame")
	// ErrAuth means the peer's first frame was not the expected auth frame.
	ErrAuth = errors.New("rpc: authentication failed")
	// ErrUnknownMethod is the Code of the RemoteError returned for a method
	// id the peer has no handler for.
	ErrUnknownMethod = errors.New("rpc: unknown method")
	// ErrStreamAbandoned is seen by a stream handler whose consumer went away.
	ErrStreamAbandoned = errors.New("rpc: stream abandoned by the consumer")
)

// RemoteError is an error returned by the handler on the other side of the
// connection. Handlers may return one to control what the caller sees.
type RemoteError struct {
	Name    string // the error's type or class name, e.g. "*fs.PathError" or "Error"
	Message string
	Code    string // a stable code callers branch on, e.g. "E_BAD"; optional
	Stack   string // the remote stack (always set for a handler panic)
	Data    any    // the error payload exactly as the peer sent it, decoded

	// Err is the error's identity. On the side that returns a RemoteError
	// it is the original error, whose well-known and registered sentinels
	// and registered typed error travel with it; on the receiving side it
	// is what of those this process knows (see procxy.RegisterError), so
	// errors.Is and errors.As see through the process boundary. It may be
	// nil.
	Err error
}

// Unwrap returns Err.
func (e *RemoteError) Unwrap() error { return e.Err }

func (e *RemoteError) Error() string {
	if e.Name != "" && e.Name != "Error" {
		return fmt.Sprintf("remote %s: %s", e.Name, e.Message)
	}
	return "remote: " + e.Message
}

// Is reports whether target is a *RemoteError with the same non-empty Code,
// so callers can keep a sentinel RemoteError per code and use errors.Is.
// A RemoteError with code CodeUnknownMethod also matches ErrUnknownMethod.
func (e *RemoteError) Is(target error) bool {
	if target == ErrUnknownMethod {
		return e.Code == codeUnknownMethod
	}
	t, ok := target.(*RemoteError)
	return ok && t.Code != "" && t.Code == e.Code
}

// Codes of the RemoteErrors this package and the layers above it produce
// themselves. Branch on them with RemoteError.Code, or with errors.Is and
// a &RemoteError{Code: …} target.
const (
	// CodeUnknownMethod: the peer has no handler for the method id (it
	// matches ErrUnknownMethod too).
	CodeUnknownMethod = "unknown_method"
	// CodeBadRequest: the request payload did not decode into what the
	// handler takes.
	CodeBadRequest = "bad_request"
	// CodeBadResponse: the handler's result could not be encoded.
	CodeBadResponse = "bad_response"
	// CodeBadResult: the result arrived but did not decode into what the
	// caller asked for (procxy's calls).
	CodeBadResult = "bad_result"
)

const codeUnknownMethod = CodeUnknownMethod

// errorPayload is how a Go peer sends an error: a msgpack map whose
// "message" member is what a Procwire (Node.js) parent shows.
type errorPayload struct {
	Message string `msgpack:"message"`
	Name    string `msgpack:"name,omitempty"`
	Code    string `msgpack:"code,omitempty"`
	Stack   string `msgpack:"stack,omitempty"`
	// The error's identity (package internal/errid): the keys of the
	// sentinels it matches, and a typed error of a registered type.
	Is    []string           `msgpack:"is,omitempty"`
	Type  string             `msgpack:"type,omitempty"`
	Value msgpack.RawMessage `msgpack:"value,omitempty"`
}

// appendError encodes err as an error payload (always msgpack, §6.7).
func appendError(dst []byte, err error) []byte {
	var p errorPayload
	var re *RemoteError
	id := err
	if errors.As(err, &re) {
		p = errorPayload{Message: re.Message, Name: re.Name, Code: re.Code, Stack: re.Stack}
		id = re.Err
	} else {
		p = errorPayload{Message: err.Error(), Name: fmt.Sprintf("%T", err)}
	}
	p.Is, p.Type, p.Value = errid.Describe(id)
	out, encErr := codec.Msgpack.Append(dst, &p)
	if encErr != nil { // cannot happen for strings; keep the frame valid anyway
		out, _ = codec.Msgpack.Append(dst, err.Error())
	}
	return out
}

// decodeError turns an error payload into a *RemoteError following the
// Procwire parent's rules: a string is the message; a map's "message" member
// is the message; anything else is shown as JSON.
func decodeError(payload []byte) error {
	var v any
	if err := codec.Msgpack.Unmarshal(payload, &v); err != nil {
		return fmt.Errorf("rpc: undecodable error payload: %w", err)
	}
	re := &RemoteError{Data: v}
	switch x := v.(type) {
	case string:
		re.Message = x
	case map[string]any:
		if m, ok := x["message"].(string); ok {
			re.Message = m
		} else {
			re.Message = jsonText(v)
		}
		re.Name, _ = x["name"].(string)
		re.Stack, _ = x["stack"].(string)
		if x["is"] != nil || x["type"] != nil {
			var p errorPayload
			if codec.Msgpack.Unmarshal(payload, &p) == nil {
				re.Err = errid.Decode(p.Is, p.Type, p.Value)
			}
		}
		switch c := x["code"].(type) {
		case string:
			re.Code = c
		case nil:
		default:
			re.Code = fmt.Sprint(c)
		}
	default:
		re.Message = jsonText(v)
	}
	return re
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
