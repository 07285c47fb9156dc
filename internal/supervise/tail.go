package supervise

import (
	"strings"
	"sync"
)

// Bounds of what a child's exit error keeps of its stderr.
const (
	tailLines  = 32       // last stderr lines kept
	tailWidth  = 200      // bytes of one kept line; longer ones end in "…"
	panicBytes = 64 << 10 // bytes of the panic report kept
)

// tail keeps a child's last stderr lines, and its panic report from the
// line starting with "panic: " or "fatal error: " on (bounded).
type tail struct {
	mu      sync.Mutex // guards the fields below; add runs on the stderr reader, snapshot anywhere
	lines   []string   // ring of the last tailLines lines
	next    int
	panic   strings.Builder
	inPanic bool
}

func (t *tail) add(b []byte) {
	line := string(b)
	short := line
	if len(short) > tailWidth {
		short = short[:tailWidth] + "…"
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.lines) < tailLines {
		t.lines = append(t.lines, short)
	} else {
		t.lines[t.next] = short
		t.next = (t.next + 1) % tailLines
	}
	if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
		t.inPanic = true
		t.panic.Reset()
	}
	if t.inPanic && t.panic.Len() < panicBytes {
		t.panic.WriteString(line)
		t.panic.WriteByte('\n')
	}
}

func (t *tail) snapshot() (lines []string, panic string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines = append(lines, t.lines[t.next:]...)
	lines = append(lines, t.lines[:t.next]...)
	return lines, t.panic.String()
}
