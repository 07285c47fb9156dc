package supervise

import (
	"bytes"
	"io"

	"github.com/procxy/procxy/internal/linereader"
)

// LineReader splits a child's output into lines for logging, with the
// module's one bounded line splitter (internal/linereader). A line ends at
// LF, CR or CRLF; empty lines are skipped. A line longer than max is
// returned cut to max bytes with cut set, and the rest of it is skipped.
// It is not safe for concurrent use.
type LineReader struct{ lr *linereader.Reader }

// NewLineReader reads lines of at most max bytes from r.
func NewLineReader(r io.Reader, max int) *LineReader {
	return &LineReader{lr: linereader.NewCutting(r, max)}
}

// Next returns the next non-empty line; the caller owns it. At the end of
// the input it returns io.EOF (or the read error).
func (r *LineReader) Next() (b []byte, cut bool, err error) {
	for {
		line, cut, err := r.lr.Next()
		if err != nil {
			return nil, false, err
		}
		if len(line) > 0 {
			return bytes.Clone(line), cut, nil
		}
	}
}
