package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/procxy/procxy/rpc/codec"
	"github.com/procxy/procxy/rpc/wire"
)

// The ipc protocol runs on rpc/wire frames: the 11-byte header's method
// field is the operation below, its request id field carries the
// operation's number (a subscription id, a ping nonce, an ack number), and
// the payload is the operation's body. docs/PROTOCOL.md has the layouts.
const (
	opConnect uint16 = 1 + iota // client → server, first frame: msgpack connectInfo
	opInfo                      // server → client, answer to CONNECT: msgpack serverInfo
	opPub                       // client → server: message; id = ack number if flagAck
	opSub                       // client → server: id = sid; u16 subject length | subject | queue
	opUnsub                     // client → server: id = sid; empty
	opMsg                       // server → client: id = sid; message
	opPing                      // either way: id = nonce
	opPong                      // either way: id = the ping's nonce
	opErr                       // server → client: id = ack number or 0; msgpack errInfo
	opAck                       // server → client: id = ack number; empty, or msgpack errInfo
	opCancel                    // either way: reply subject of a request given up
	opDropped                   // server → client: id = sid; u32 messages dropped for it
	opLast
)

var opNames = [...]string{"", "CONNECT", "INFO", "PUB", "SUB", "UNSUB", "MSG", "PING", "PONG", "ERR", "ACK", "CANCEL", "DROPPED"}

func opName(op uint16) string {
	if op < opLast {
		return opNames[op]
	}
	return fmt.Sprintf("op(%d)", op)
}

// Frame flags of PUB and MSG (bits 0–5 of the header's flag byte).
const (
	wfRequest wire.Flags = 0x01 // FlagRequest
	wfReply   wire.Flags = 0x02 // FlagReply
	wfMore    wire.Flags = 0x04 // FlagMore
	wfAck     wire.Flags = 0x08 // the publisher waits for an ACK (PUB only)
	wfAll                = wfRequest | wfReply | wfMore | wfAck
)

func wireFlags(f Flags) wire.Flags { return wire.Flags(f) & (wfRequest | wfReply | wfMore) }

func apiFlags(f wire.Flags) Flags { return Flags(f & (wfRequest | wfReply | wfMore)) }

// protoVersion is the version a client announces in CONNECT.
const protoVersion = 1

// connectInfo is the body of CONNECT.
type connectInfo struct {
	Version int    `msgpack:"v"`
	Name    string `msgpack:"name,omitempty"`
	Token   string `msgpack:"token,omitempty"`
	NoEcho  bool   `msgpack:"no_echo,omitempty"`
	Lang    string `msgpack:"lang,omitempty"`
	Inbox   string `msgpack:"inbox,omitempty"` // the client's reply subjects' prefix
}

// serverInfo is the body of INFO.
type serverInfo struct {
	Version    int    `msgpack:"v"`
	ServerID   string `msgpack:"server_id"`
	ClientID   uint64 `msgpack:"client_id"`
	MaxPayload int    `msgpack:"max_payload"`
	Heartbeat  int64  `msgpack:"heartbeat_ns,omitempty"`
	Identity   string `msgpack:"identity,omitempty"`
}

// errInfo is the body of ERR and of a failed ACK.
type errInfo struct {
	Code    string `msgpack:"code"`
	Message string `msgpack:"msg"`
	Subject string `msgpack:"subject,omitempty"`
}

// Error codes of ERR and ACK.
const (
	codeAuth          = "auth"
	codePermission    = "permission"
	codeRateLimit     = "rate_limit"
	codeMaxPayload    = "max_payload"
	codeBadSubject    = "bad_subject"
	codeProtocol      = "protocol"
	codeNoSubscribers = "no_subscribers"
	codeShutdown      = "shutdown"
	codeMaxConns      = "max_connections"
)

// err turns an errInfo into the sentinel error it stands for.
func (e errInfo) err() error {
	var base error
	switch e.Code {
	case codeAuth:
		base = ErrAuth
	case codePermission:
		base = ErrPermission
	case codeRateLimit:
		base = ErrRateLimited
	case codeMaxPayload:
		base = ErrMaxPayload
	case codeBadSubject:
		base = ErrBadSubject
	case codeNoSubscribers:
		base = ErrNoSubscribers
	case codeShutdown:
		base = ErrServerShutdown
	case codeMaxConns:
		base = ErrMaxConnections
	default:
		base = ErrProtocol
	}
	// The sender's message usually starts with the same sentinel's text.
	msg := strings.TrimPrefix(e.Message, base.Error())
	msg = strings.TrimPrefix(msg, ": ")
	if e.Subject != "" {
		msg = e.Subject + ": " + msg
	}
	if msg == "" {
		return base
	}
	return fmt.Errorf("%w: %s", base, msg)
}

// codeOf names the error code for a sentinel.
func codeOf(err error) string {
	switch {
	case errors.Is(err, ErrAuth):
		return codeAuth
	case errors.Is(err, ErrPermission):
		return codePermission
	case errors.Is(err, ErrRateLimited):
		return codeRateLimit
	case errors.Is(err, ErrMaxPayload):
		return codeMaxPayload
	case errors.Is(err, ErrBadSubject):
		return codeBadSubject
	case errors.Is(err, ErrNoSubscribers):
		return codeNoSubscribers
	case errors.Is(err, ErrServerShutdown):
		return codeShutdown
	case errors.Is(err, ErrMaxConnections):
		return codeMaxConns
	}
	return codeProtocol
}

func encodeInfo(v any) []byte {
	b, err := codec.Msgpack.Append(nil, v)
	if err != nil {
		panic(err) // fixed structs of strings and numbers always encode
	}
	return b
}

func decodeInfo(p []byte, v any) error {
	if err := codec.Msgpack.Unmarshal(p, v); err != nil {
		return fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return nil
}

// appendSub encodes the body of SUB.
func appendSub(dst []byte, subject, queue string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(subject)))
	dst = append(dst, subject...)
	return append(dst, queue...)
}

// parseSub decodes the body of SUB.
func parseSub(p []byte) (subject, queue []byte, err error) {
	if len(p) < 2 {
		return nil, nil, fmt.Errorf("%w: SUB of %d bytes", ErrProtocol, len(p))
	}
	n := int(binary.BigEndian.Uint16(p))
	if n > MaxSubjectLen || len(p)-2 < n || len(p)-2-n > MaxSubjectLen {
		return nil, nil, fmt.Errorf("%w: SUB lengths", ErrProtocol)
	}
	return p[2 : 2+n], p[2+n:], nil
}

// maxFrame is the largest frame payload a peer accepts for a maximum
// message size: the message plus its subjects and the fixed fields.
func maxFrame(maxPayload int) int { return maxPayload + 2*MaxSubjectLen + 4096 }
