package worker_test

import (
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/procxy/procxy/worker"
)

// TestInvalidHeaders: a header that breaks §5.7 closes the connection
// before any payload is read or allocated, no error frame is sent, the
// reason is logged, and the session ends (§3.5, vectors X01–X04).
func TestInvalidHeaders(t *testing.T) {
	for _, tc := range []struct {
		name, header, log string
		opts              worker.Options
	}{
		{"X01 1 GiB + 1", "0001000000000140000001", "payload too large: 1073741825 bytes", worker.Options{}},
		{"X02 reserved flag bit", "0001400000000100000000", "reserved flag bits", worker.Options{}},
		{"X03 method id 0", "0000000000000100000000", "method id 0", worker.Options{}},
		{"X04 length 0xFFFFFFFF", "00010000000001ffffffff", "payload too large: 4294967295 bytes", worker.Options{}},
		{"over MaxPayload", "0001000000000100000401", "payload too large: 1025 bytes, configured max: 1024", worker.Options{MaxPayload: 1024}},
		{"reserved bit 7 on an abort", "ffff800000000100000000", "reserved flag bits", worker.Options{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := startService(t, tc.opts)
			p := h.dial(nil)
			p.writeHex(echoReq) // adopted and served first
			if got := p.frame(); got != echoReply {
				t.Fatalf("echo = %s, want %s", got, echoReply)
			}
			p.writeHex(tc.header)
			p.closed()
			if err := h.wait(); err != nil {
				t.Errorf("Run = %v, want nil", err)
			}
			if log := h.log.String(); !strings.Contains(log, "invalid frame") || !strings.Contains(log, tc.log) {
				t.Errorf("log does not give the reason %q:\n%s", tc.log, log)
			}
			if _, err := os.Stat(h.pipe); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("socket file: %v, want it removed", err)
			}
		})
	}
}
