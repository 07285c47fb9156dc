package ipc

import (
	"fmt"
	"strings"
)

// MaxSubjectLen is the longest subject (and reply subject) accepted, in bytes.
const MaxSubjectLen = 1024

// Reserved subject prefixes.
const (
	// InboxPrefix starts every reply subject made by [Conn.NewInbox] and by
	// requests. Publishing to an inbox is how a responder answers.
	InboxPrefix = "_INBOX."
	// SystemPrefix starts the subjects the library itself uses (dead letters,
	// broadcasts, cancellations). Applications may subscribe to them but
	// not publish to them.
	SystemPrefix = "$"
)

// Subjects the library publishes on or listens to.
const (
	subjectDLQ       = "$IPC.DLQ"        // + "." + reason: dead letters
	subjectBroadcast = "$IPC.BCAST"      // + "." + subject: server broadcasts
	subjectCancel    = "$IPC.CANCEL"     // + "." + reply: a requester gave up (backends without routing)
	subjectPresence  = "$IPC.PRESENCE"   // + ".connect" / ".disconnect": clients coming and going
	subjectChannel   = "$IPC.CHAN"       // + "." + name: channel opening requests
	subjectInboxWild = InboxPrefix + ">" // everything a reply can be sent to
)

// ValidSubject reports whether s is a valid subject to subscribe to: one or
// more non-empty "."-separated tokens without whitespace, where a token "*"
// matches any one token and a last token ">" matches one or more tokens.
// A "*" or ">" inside a longer token is an ordinary character, as in NATS.
func ValidSubject(s string) bool { return checkSubject(s, true) == nil }

// ValidLiteral reports whether s is a valid subject to publish to: a valid
// subject without wildcard tokens.
func ValidLiteral(s string) bool { return checkSubject(s, false) == nil }

// checkSubject validates s; wild says whether wildcard tokens are allowed.
func checkSubject(s string, wild bool) error {
	if s == "" {
		return fmt.Errorf("%w: empty subject", ErrBadSubject)
	}
	if len(s) > MaxSubjectLen {
		return fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadSubject, len(s), MaxSubjectLen)
	}
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) {
			switch c := s[i]; c {
			case ' ', '\t', '\r', '\n', '\f', '\v', 0:
				return fmt.Errorf("%w: %q contains whitespace or NUL", ErrBadSubject, s)
			case '.':
			default:
				continue
			}
		}
		tok := s[start:i]
		switch {
		case tok == "":
			return fmt.Errorf("%w: %q has an empty token", ErrBadSubject, s)
		case tok == "*" || tok == ">":
			if !wild {
				return fmt.Errorf("%w: %q: cannot publish to a wildcard subject", ErrBadSubject, s)
			}
			if tok == ">" && i != len(s) {
				return fmt.Errorf("%w: %q: '>' must be the last token", ErrBadSubject, s)
			}
		}
		start = i + 1
	}
	return nil
}

// SubjectMatches reports whether the literal subject matches pattern, which
// may hold wildcard tokens.
func SubjectMatches(pattern, subject string) bool {
	for {
		pt, prest, pmore := strings.Cut(pattern, ".")
		st, srest, smore := strings.Cut(subject, ".")
		switch pt {
		case ">":
			return true // one or more tokens remain in subject
		case "*":
		default:
			if pt != st {
				return false
			}
		}
		if !pmore || !smore {
			return pmore == smore
		}
		pattern, subject = prest, srest
	}
}

// isReserved reports whether a user may not publish to subject.
func isReserved(subject string) bool { return strings.HasPrefix(subject, SystemPrefix) }
