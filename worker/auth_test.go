package worker_test

import (
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/procxy/procxy/rpc/wire"
	"github.com/procxy/procxy/worker"
)

// token is F13's example token.
var token = []byte("00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff")

const (
	echoReq   = "0001000000000100000001 01" // echo(1), request id 1
	echoReply = "0001030000000100000001 01"
)

func authFrame(tok []byte) string {
	h := wire.Header{Method: wire.MethodAuth, Len: uint32(len(tok))}
	return hex.EncodeToString(h.Append(nil)) + hex.EncodeToString(tok)
}

// TestAuth covers §8.5: with a token the first frame must be the auth frame
// with exactly that token (constant-time compare); anything else closes
// that connection without an answer — including a request packed behind a
// bad auth frame — and the worker keeps listening for the real parent.
func TestAuth(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first string // hex written first
		ok    bool   // adopted: the echo packed or sent after is answered
	}{
		{"right token", authFrame(token), true},
		{"right token and a request in one write", authFrame(token) + echoReq, true},
		{"wrong token", authFrame([]byte(strings.Repeat("f", 64))), false},
		{"short token", authFrame(token[:63]), false},
		{"long token", authFrame(append(token, '0')), false},
		{"request instead of auth", echoReq, false},
		{"bad auth and a request in one write", authFrame(token[1:]) + echoReq, false},
		{"auth frame with reserved flags", "fffe400000000000000040" + hex.EncodeToString(token), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := startService(t, worker.Options{Token: token})
			p := h.dial(nil)
			p.writeHex(tc.first)
			if !tc.ok {
				p.closed()
				// Still listening: the real parent gets in.
				p = h.dial(token)
			}
			if !strings.HasSuffix(tc.first, echoReq) || !tc.ok {
				p.writeHex(echoReq)
			}
			if got := p.frame(); got != echoReply {
				t.Errorf("echo after auth = %s, want %s", got, echoReply)
			}
			// After adoption a stray auth frame is ignored (§8.5 rule 4).
			p.writeHex(authFrame([]byte("x")) + "0001000000000200000001 02")
			if got, want := p.frame(), "0001030000000200000001 02"; got != want {
				t.Errorf("echo after a stray auth frame = %s, want %s", got, want)
			}
		})
	}
}

// TestAuthPending: while the first connection is pending authentication,
// others are closed at once (§8.4); a silent connection is dropped after
// AuthTimeout so it cannot hold the only slot for ever (§13.9).
func TestAuthPending(t *testing.T) {
	h, _ := startService(t, worker.Options{Token: token, AuthTimeout: 200 * time.Millisecond})
	silent := h.dial(nil)
	second := h.dial(nil)
	second.closed()
	silent.closed() // after AuthTimeout
	p := h.dial(token)
	p.writeHex(echoReq)
	if got := p.frame(); got != echoReply {
		t.Errorf("echo = %s, want %s", got, echoReply)
	}
	if !strings.Contains(h.log.String(), "only one parent connection") {
		t.Errorf("the extra connection was not logged:\n%s", h.log)
	}
}

// TestAuthEnv: with Options.Token nil the token comes from PROCWIRE_TOKEN;
// set but empty means the empty token, not "no authentication" (§13.10).
func TestAuthEnv(t *testing.T) {
	t.Run("set", func(t *testing.T) {
		t.Setenv("PROCWIRE_TOKEN", string(token))
		h, _ := startService(t, worker.Options{})
		p := h.dial(nil)
		p.writeHex(echoReq)
		p.closed()
		p = h.dial(token)
		p.writeHex(echoReq)
		if got := p.frame(); got != echoReply {
			t.Errorf("echo = %s, want %s", got, echoReply)
		}
	})
	t.Run("empty", func(t *testing.T) {
		t.Setenv("PROCWIRE_TOKEN", "")
		h, _ := startService(t, worker.Options{})
		p := h.dial(nil)
		p.writeHex(echoReq)
		p.closed()
		p = h.dial([]byte{})
		p.writeHex(echoReq)
		if got := p.frame(); got != echoReply {
			t.Errorf("echo = %s, want %s", got, echoReply)
		}
	})
}

// TestSingleConnection: without a token the first connection is adopted at
// once; the listener closes and its file disappears, so a second parent
// cannot connect (§8.2, §8.4).
func TestSingleConnection(t *testing.T) {
	h, _ := startService(t, worker.Options{})
	p := h.dial(nil)
	p.writeHex(echoReq)
	if got := p.frame(); got != echoReply {
		t.Fatalf("echo = %s, want %s", got, echoReply)
	}
	if c, err := net.Dial("unix", h.pipe); err == nil {
		c.Close()
		t.Error("a second connection was accepted after adoption")
	}
}
