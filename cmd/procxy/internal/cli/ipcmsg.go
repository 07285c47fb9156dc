package cli

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/rpc/codec"
)

// ipcCodec reads an ipc command's -codec: how message data is written
// and read. raw is the data as it is, as the nats command has it; msgpack
// (ipc's default for typed handlers, Topics and Call) and json convert
// JSON text.
func ipcCodec(cmd, name string) (codec.Codec, error) {
	switch name {
	case "raw":
		return codec.Raw, nil
	case "json":
		return codec.JSON, nil
	case "msgpack":
		return codec.Msgpack, nil
	}
	return nil, usageErrorf("%s: -codec %q: want raw, json or msgpack", cmd, name)
}

const ipcCodecUsage = "`codec` of the data: raw, as it is; json; or msgpack, JSON converted, as ipc's typed handlers and topics use it"

// checkSubjectArg refuses a subject the server would refuse, before
// connecting. wild allows wildcards (subscriptions).
func checkSubjectArg(cmd, s string, wild bool) error {
	ok := ipc.ValidLiteral(s)
	if wild {
		ok = ipc.ValidSubject(s)
	}
	if ok {
		if !wild && strings.HasPrefix(s, "$") {
			return usageErrorf("%s: cannot publish to %q: subjects starting with $ are the library's", cmd, s)
		}
		return nil
	}
	why := "subjects are \".\"-separated tokens without spaces"
	switch {
	case s == "":
		why = "it is empty"
	case strings.ContainsAny(s, " \t\r\n\f\v\x00"):
		why = "it contains whitespace"
	case slices.Contains(strings.Split(s, "."), ""):
		why = "it has an empty token"
	case !wild && slices.ContainsFunc(strings.Split(s, "."), func(t string) bool { return t == "*" || t == ">" }):
		why = "wildcards (* and >) are for subscriptions"
	case strings.Contains(s, ">") && !strings.HasSuffix(s, ">"):
		why = "\">\" must be the last token"
	case len(s) > ipc.MaxSubjectLen:
		why = fmt.Sprintf("it is longer than %d bytes", ipc.MaxSubjectLen)
	}
	return usageErrorf("%s: invalid subject %q: %s", cmd, s, why)
}

// readData returns the data given after the subject: the argument,
// "@FILE", or standard input ("@-"). Without an argument it reads
// standard input unless that is a terminal, where the data is empty, as
// the nats command has it: a message often needs no data.
func readData(inv *invocation, args []string) (data []byte, source string, err error) {
	if f, ok := inv.stdin.(*os.File); len(args) == 0 && (inv.stdin == nil || ok && term.IsTerminal(int(f.Fd()))) {
		return nil, "no data", nil
	}
	return readInput(inv, args, "subject")
}

// encodeData turns the input of pub, request or reply into message data.
func encodeData(cd codec.Codec, input []byte, source string) ([]byte, error) {
	if cd == codec.Raw {
		return input, nil
	}
	return encodeInput(cd, input, source)
}

// msgPrinter writes received messages for a person, as nats sub does,
// or as JSON lines. Each message is one write, so messages that handlers
// print at once do not mix.
type msgPrinter struct {
	out    *lineWriter
	cd     codec.Codec
	asJSON bool
	raw    bool // the data alone, one message a line
	stamp  bool // a time before each message
}

// print writes message number n.
func (p *msgPrinter) print(n int, m *ipc.Msg) error {
	v, decodeErr := p.value(m)
	var b []byte
	switch {
	case p.asJSON:
		o := object{}
		if p.stamp {
			o = append(o, member{"time", time.Now().Format(time.RFC3339Nano)})
		}
		o = append(o, member{"subject", m.Subject})
		if m.Reply != "" {
			o = append(o, member{"reply", m.Reply})
		}
		if len(m.Header) > 0 {
			o = append(o, member{"header", headerValue(m.Header)})
		}
		o = append(o, member{"data", v})
		if decodeErr != nil {
			o = append(o, member{"error", decodeErr.Error()})
		}
		b = append(appendJSON(nil, o), '\n')
	case p.raw:
		b = append(p.text(m.Data, v), '\n')
	default:
		if p.stamp {
			b = time.Now().AppendFormat(b, "15:04:05.000 ")
		}
		b = fmt.Appendf(b, "[#%d] Received on %q", n, m.Subject)
		if m.Reply != "" {
			b = fmt.Appendf(b, " with reply %q", m.Reply)
		}
		b = append(b, '\n')
		if len(m.Header) > 0 {
			b = appendHeaders(b, m.Header)
			b = append(b, '\n')
		}
		if decodeErr != nil {
			b = fmt.Appendf(b, "(%v)\n", decodeErr)
		}
		b = append(b, p.text(m.Data, v)...)
		if len(b) > 0 && b[len(b)-1] != '\n' {
			b = append(b, '\n')
		}
		b = append(b, '\n')
	}
	p.out.mu.Lock()
	defer p.out.mu.Unlock()
	_, err := p.out.stdout.Write(b)
	return err
}

// value is m's data in the value model: decoded with the codec, or, raw,
// a string when it is UTF-8 text and bytes otherwise. Data that does not
// decode is returned raw with the error.
func (p *msgPrinter) value(m *ipc.Msg) (any, error) {
	if p.cd != codec.Raw {
		v, err := decodeOutput(p.cd, m.Data, "the data")
		if err == nil {
			return v, nil
		}
		return rawValue(m.Data), err
	}
	return rawValue(m.Data), nil
}

// text is data for a person: decoded values as JSON, raw text as it is,
// and other bytes as they are, or as a hex dump on a terminal.
func (p *msgPrinter) text(data []byte, v any) []byte {
	if s, ok := v.(string); ok && p.cd == codec.Raw {
		return []byte(s)
	}
	if b, ok := v.([]byte); ok && p.cd == codec.Raw {
		if p.out.stdout.terminal {
			return []byte(hex.Dump(b))
		}
		return b
	}
	if p.cd == codec.Raw {
		return data
	}
	return appendJSON(nil, v)
}

func rawValue(b []byte) any {
	if utf8.Valid(b) {
		return string(b)
	}
	return b
}

// headerValue is a header as a JSON object of value lists, keys sorted.
func headerValue(h ipc.Header) object {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	o := make(object, 0, len(keys))
	for _, k := range keys {
		vs := make([]any, len(h[k]))
		for i, v := range h[k] {
			vs[i] = v
		}
		o = append(o, member{k, vs})
	}
	return o
}

// appendHeaders appends "Key: value" lines, keys sorted.
func appendHeaders(b []byte, h ipc.Header) []byte {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		for _, v := range h[k] {
			b = fmt.Appendf(b, "%s: %s\n", k, v)
		}
	}
	return b
}

// expand replaces {{Count}} with n and {{Time}} with the time in data
// (pub -count).
func expand(data []byte, n int) []byte {
	if !bytes.Contains(data, []byte("{{")) {
		return data
	}
	data = bytes.ReplaceAll(data, []byte("{{Count}}"), fmt.Append(nil, n))
	return bytes.ReplaceAll(data, []byte("{{Time}}"), []byte(time.Now().Format(time.RFC3339Nano)))
}
