package cli

import (
	"bytes"
	"cmp"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/procxy/procxy/rpc/codec"
)

// codecFlags choose the codecs of a method's payloads. Procwire announces
// no codecs, so the user names them; msgpack is Procwire's default.
type codecFlags struct {
	both, request, response, event string
}

func (c *codecFlags) register(fs *flag.FlagSet, events bool) {
	fs.StringVar(&c.both, "codec", "msgpack", "`codec` of the method's request and response: msgpack, json or raw (Procwire does not announce codecs)")
	fs.StringVar(&c.request, "request-codec", "", "`codec` of the request, when it differs from the response's (default -codec)")
	fs.StringVar(&c.response, "response-codec", "", "`codec` of the response and of stream chunks (default -codec)")
	if events {
		fs.StringVar(&c.event, "event-codec", "msgpack", "`codec` of the worker's events")
	}
}

// resolve returns the request, response and event codecs.
func (c *codecFlags) resolve() (req, resp, ev codec.Codec, err error) {
	pick := func(flagName, name, def string) codec.Codec {
		if err != nil {
			return nil
		}
		if name == "" {
			name, flagName = def, "codec"
		}
		switch name {
		case "msgpack":
			return codec.Msgpack
		case "json":
			return codec.JSON
		case "raw":
			return codec.Raw
		}
		err = usageErrorf("-%s %q: want msgpack, json or raw", flagName, name)
		return nil
	}
	req = pick("request-codec", c.request, c.both)
	resp = pick("response-codec", c.response, c.both)
	ev = pick("event-codec", cmp.Or(c.event, "msgpack"), "")
	return req, resp, ev, err
}

// readInput returns the input the user gave after the method name: the
// argument itself, a file's content for "@FILE", standard input for "@-"
// or when there is no argument. source names it in errors.
func readInput(inv *invocation, args []string) (data []byte, source string, err error) {
	switch {
	case len(args) > 1:
		return nil, "", usageErrorf("%s: one input at most after the method, got %d (quote the JSON)", inv.name, len(args))
	case len(args) == 1 && args[0] != "@-":
		arg := args[0]
		if file, ok := strings.CutPrefix(arg, "@"); ok {
			data, err = os.ReadFile(file)
			if err != nil {
				return nil, "", usageErrorf("%s: input file: %v", inv.name, err)
			}
			return data, "file " + file, nil
		}
		return []byte(arg), "the input argument", nil
	}
	if f, ok := inv.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintln(inv.stderr, "procxy: reading the input from the terminal; end it with Ctrl-D (or give it after the method)")
	}
	if inv.stdin == nil {
		return nil, "stdin", nil
	}
	data, err = io.ReadAll(inv.stdin)
	if err != nil {
		return nil, "", fmt.Errorf("read stdin: %w", err)
	}
	return data, "stdin", nil
}

// encodeInput turns input into a request payload: for msgpack, JSON text
// converted through the value model; for JSON, the JSON text checked and
// compacted; for raw, the bytes as they are. Empty input means null (an
// empty raw payload).
func encodeInput(cd codec.Codec, input []byte, source string) ([]byte, error) {
	if cd == codec.Raw {
		return input, nil
	}
	if len(bytes.TrimSpace(input)) == 0 {
		input = []byte("null")
	}
	v, err := parseJSON(input, source)
	if err != nil {
		var ie *inputError
		if r, _ := utf8.DecodeRune(input); errors.As(err, &ie) && ie.line == 1 && ie.col == 1 && unicode.IsLetter(r) && !bytes.ContainsAny(input, "\n\"") {
			ie.msg += fmt.Sprintf(" (JSON strings need quotes: '%q')", input)
		}
		return nil, &UsageError{Err: err}
	}
	if cd == codec.JSON {
		var buf bytes.Buffer
		json.Compact(&buf, input) // valid: parseJSON accepted it
		return buf.Bytes(), nil
	}
	p, err := codec.Msgpack.Append(nil, v)
	if err != nil {
		return nil, &UsageError{Err: fmt.Errorf("%s: cannot encode as msgpack: %w", source, err)}
	}
	return p, nil
}

// decodeOutput turns a payload of cd into the value model (raw payloads
// become []byte). what names the payload in errors.
func decodeOutput(cd codec.Codec, payload []byte, what string) (any, error) {
	switch cd {
	case codec.Raw:
		return payload, nil
	case codec.JSON:
		if !json.Valid(payload) {
			return nil, fmt.Errorf("%s is not JSON (%s); if the method uses another codec, pass -response-codec msgpack or raw", what, preview(payload))
		}
		v, err := parseJSON(payload, what)
		if err != nil {
			return nil, err
		}
		return v, nil
	}
	var mv msgValue
	if err := codec.Msgpack.Unmarshal(payload, &mv); err != nil {
		return nil, fmt.Errorf("%s is not msgpack (%v; %s); if the method uses another codec, pass -response-codec json or raw", what, err, preview(payload))
	}
	return mv.v, nil
}

// preview describes the first bytes of a payload for an error message.
func preview(p []byte) string {
	const n = 32
	if len(p) == 0 {
		return "it is empty"
	}
	head := p[:min(len(p), n)]
	more := ""
	if len(p) > n {
		more = "…"
	}
	if utf8.Valid(head) && isText(head) {
		return fmt.Sprintf("it begins %q%s", head, more)
	}
	return fmt.Sprintf("%d bytes: %x%s", len(p), head, more)
}

func isText(b []byte) bool {
	for _, r := range string(b) {
		if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

// writeRaw writes raw bytes for a person: as they are, unless w is a
// terminal and they are not text, in which case as a hex dump.
func writeRaw(w *output, b []byte) error {
	if w.terminal && !(utf8.Valid(b) && isText(b)) {
		_, err := io.WriteString(w, hex.Dump(b))
		return err
	}
	_, err := w.Write(b)
	return err
}
