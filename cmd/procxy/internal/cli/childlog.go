package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
)

// childLogger returns the logger the demo gives its proxies: it writes what
// the children print, one line each, as "[child PID STREAM] line".
func childLogger(w io.Writer) *slog.Logger {
	return slog.New(&childHandler{mu: new(sync.Mutex), w: w})
}

// childHandler is a slog.Handler for procxy's forwarded output lines,
// which carry "pid" and "stream" attributes. It is safe for concurrent use.
type childHandler struct {
	mu          *sync.Mutex // guards writes to w, shared by the handler's copies
	w           io.Writer
	pid, stream string
}

func (h *childHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }
func (h *childHandler) WithGroup(string) slog.Handler                { return h }

func (h *childHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	c := *h
	for _, a := range attrs {
		switch a.Key {
		case "pid":
			c.pid = a.Value.String()
		case "stream":
			c.stream = a.Value.String()
		}
	}
	return &c
}

func (h *childHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var err error
	if h.pid == "" { // procxy itself, not a child's output
		_, err = fmt.Fprintf(h.w, "[procxy] %s\n", r.Message)
	} else {
		_, err = fmt.Fprintf(h.w, "[child %s %s] %s\n", h.pid, h.stream, r.Message)
	}
	return err
}
