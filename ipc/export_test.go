package ipc

// Internals for the tests of package ipc_test.

// DecodeMsg and AppendMsg expose the message wire format.
func DecodeMsg(p []byte) (*Msg, error)    { return decodeMsg(p) }
func AppendMsg(dst []byte, m *Msg) []byte { return appendMsg(dst, m) }

// MatchSublist builds a sublist of patterns and returns, for subject, the
// patterns of the plain subscriptions and of the queue groups it reaches.
func MatchSublist(patterns []string, subject string) (plain, queued []string) {
	sl := newSublist()
	var subs []*hubSub
	for i, p := range patterns {
		s := &hubSub{subject: p}
		if i%3 == 2 {
			s.queue = "q"
		}
		sl.insert(s)
		subs = append(subs, s)
	}
	for i, s := range subs { // remove and re-insert some, to exercise pruning
		if i%4 == 1 {
			sl.remove(s)
			sl.insert(s)
		}
	}
	r := sl.match(subject)
	for _, s := range r.plain {
		plain = append(plain, s.subject)
	}
	for _, g := range r.queues {
		for _, s := range g {
			queued = append(queued, s.subject)
		}
	}
	return plain, queued
}

// ParseSub exposes the SUB body decoder.
func ParseSub(p []byte) (string, string, error) {
	s, q, err := parseSub(p)
	return string(s), string(q), err
}

// OutboxCut queues frames of the given payload sizes in an outbox, marks
// written bytes as written, and returns what takeLocked keeps.
func OutboxCut(sizes []int, written int) []byte {
	o := newOutbox(nil, nil)
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, n := range sizes {
		o.addLocked(opPub, 0, uint32(i), make([]byte, n))
	}
	o.advanceLocked(written)
	return o.takeLocked()
}
