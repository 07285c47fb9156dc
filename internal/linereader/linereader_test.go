package linereader

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func all(r *Reader) (lines []string, cuts []bool, err error) {
	for {
		l, c, err := r.Next()
		if err != nil {
			return lines, cuts, err
		}
		lines, cuts = append(lines, string(l)), append(cuts, c)
	}
}

func TestCutting(t *testing.T) {
	in := "a\r\nbb\rccc\n" + strings.Repeat("x", 10) + "\nlast"
	lines, cuts, err := all(NewCutting(iotest.OneByteReader(strings.NewReader(in)), 4))
	want := []string{"a", "", "bb", "ccc", "xxxx", "last"}
	if err != io.EOF || strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("lines %q, %v; want %q, EOF", lines, err, want)
	}
	if !cuts[4] || cuts[3] {
		t.Errorf("cut flags %v: want only the long line cut", cuts)
	}
}

func TestStrict(t *testing.T) {
	lines, _, err := all(New(strings.NewReader("one\ntwo\nthr"), 8))
	var te *TailError
	if strings.Join(lines, "|") != "one|two" || !errors.As(err, &te) || te.Dropped != 3 || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("got %q, %v; want one|two and a 3-byte TailError", lines, err)
	}
	_, _, err = all(New(strings.NewReader(strings.Repeat("y", 20)), 8))
	if !errors.Is(err, ErrTooLong) {
		t.Fatalf("a long line: got %v, want ErrTooLong", err)
	}
}

// FuzzCutting: whatever the input, no line is longer than the limit or
// holds a line end, and no more bytes come out than went in.
func FuzzCutting(f *testing.F) {
	f.Add([]byte("a\nb\r\nc\rd"), 3)
	f.Add(bytes.Repeat([]byte("z"), 300), 7)
	f.Add([]byte("\n\n\r\r"), 1)
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max < 1 || max > 1<<16 {
			return
		}
		lines, _, err := all(NewCutting(bytes.NewReader(in), max))
		if err != io.EOF {
			t.Fatalf("err %v, want EOF", err)
		}
		n := 0
		for _, l := range lines {
			if len(l) > max || strings.ContainsAny(l, "\r\n") {
				t.Fatalf("line %q breaks the bound %d or holds a line end", l, max)
			}
			n += len(l)
		}
		if n > len(in) {
			t.Fatalf("%d bytes out of %d in", n, len(in))
		}
	})
}
