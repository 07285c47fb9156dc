package ipc

import (
	"strings"
	"sync"
	"sync/atomic"
)

// hubSub is one subscription as the server routes to it.
type hubSub struct {
	peer    *peer
	sid     uint32
	subject string
	queue   string
}

// sublist indexes subscriptions by subject pattern: a tree with one level
// per token, whose "*" and ">" children hold wildcard subscriptions. It is
// safe for concurrent use; readers cache match results and check gen to see
// whether a cached result is still good.
type sublist struct {
	mu    sync.RWMutex
	root  *level
	count int
	gen   atomic.Uint64 // bumped on every insert and remove
}

type level struct {
	nodes map[string]*node
	star  *node // "*"
	gt    *node // ">"
}

type node struct {
	next   *level
	plain  []*hubSub
	queues map[string][]*hubSub
}

// matchResult is every subscription a subject reaches: plain ones each get
// the message; one member of each queue group does.
type matchResult struct {
	plain  []*hubSub
	queues [][]*hubSub
}

func newSublist() *sublist { return &sublist{root: newLevel()} }

func newLevel() *level { return &level{nodes: make(map[string]*node)} }

func (n *node) empty() bool {
	return len(n.plain) == 0 && len(n.queues) == 0 && (n.next == nil || n.next.empty())
}

func (l *level) empty() bool { return len(l.nodes) == 0 && l.star == nil && l.gt == nil }

// insert adds s; its subject must be valid.
func (sl *sublist) insert(s *hubSub) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	l := sl.root
	var n *node
	for tok := range strings.SplitSeq(s.subject, ".") {
		switch tok {
		case "*":
			if l.star == nil {
				l.star = &node{}
			}
			n = l.star
		case ">":
			if l.gt == nil {
				l.gt = &node{}
			}
			n = l.gt
		default:
			n = l.nodes[tok]
			if n == nil {
				n = &node{}
				l.nodes[tok] = n
			}
		}
		if n.next == nil {
			n.next = newLevel()
		}
		l = n.next
	}
	if s.queue == "" {
		n.plain = append(n.plain, s)
	} else {
		if n.queues == nil {
			n.queues = make(map[string][]*hubSub)
		}
		n.queues[s.queue] = append(n.queues[s.queue], s)
	}
	sl.count++
	sl.gen.Add(1)
}

// remove deletes s and prunes empty branches.
func (sl *sublist) remove(s *hubSub) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.removeAt(sl.root, s.subject, s) {
		sl.count--
		sl.gen.Add(1)
	}
}

func (sl *sublist) removeAt(l *level, subject string, s *hubSub) bool {
	tok, rest, more := strings.Cut(subject, ".")
	var n *node
	switch tok {
	case "*":
		n = l.star
	case ">":
		n = l.gt
	default:
		n = l.nodes[tok]
	}
	if n == nil {
		return false
	}
	var found bool
	if more {
		found = n.next != nil && sl.removeAt(n.next, rest, s)
	} else if s.queue == "" {
		n.plain, found = without(n.plain, s)
	} else {
		var q []*hubSub
		q, found = without(n.queues[s.queue], s)
		if len(q) == 0 {
			delete(n.queues, s.queue)
		} else {
			n.queues[s.queue] = q
		}
	}
	if found && n.empty() {
		switch tok {
		case "*":
			l.star = nil
		case ">":
			l.gt = nil
		default:
			delete(l.nodes, tok)
		}
	}
	return found
}

func without(list []*hubSub, s *hubSub) ([]*hubSub, bool) {
	for i, x := range list {
		if x == s {
			last := len(list) - 1
			list[i] = list[last]
			list[last] = nil
			return list[:last], true
		}
	}
	return list, false
}

// match returns the subscriptions a literal subject reaches.
func (sl *sublist) match(subject string) *matchResult {
	r := &matchResult{}
	sl.matchInto(subject, r)
	return r
}

// matchInto adds the subscriptions subject reaches to r.
func (sl *sublist) matchInto(subject string, r *matchResult) {
	sl.mu.RLock()
	matchLevel(sl.root, subject, r)
	sl.mu.RUnlock()
}

func matchLevel(l *level, subject string, r *matchResult) {
	tok, rest, more := strings.Cut(subject, ".")
	if n := l.gt; n != nil {
		r.add(n) // ">" takes this token and everything after it
	}
	if n := l.star; n != nil {
		matchNode(n, rest, more, r)
	}
	if n := l.nodes[tok]; n != nil {
		matchNode(n, rest, more, r)
	}
}

func matchNode(n *node, rest string, more bool, r *matchResult) {
	if !more {
		r.add(n)
		return
	}
	if n.next != nil {
		matchLevel(n.next, rest, r)
	}
}

func (r *matchResult) add(n *node) {
	r.plain = append(r.plain, n.plain...)
	for _, q := range n.queues {
		if len(q) > 0 {
			r.queues = append(r.queues, append([]*hubSub(nil), q...))
		}
	}
}

// matchCache caches match results for one reader (one goroutine at a time).
type matchCache struct {
	gen uint64
	m   map[string]*matchResult
}

const maxCached = 4096

// lookup returns the match for subject, from the cache when still good.
func (c *matchCache) lookup(sl *sublist, subject []byte) *matchResult {
	if g := sl.gen.Load(); g != c.gen || c.m == nil {
		c.m = make(map[string]*matchResult, 64)
		c.gen = g
	} else if r, ok := c.m[string(subject)]; ok {
		return r
	}
	s := string(subject)
	r := sl.match(s)
	if len(c.m) >= maxCached {
		clear(c.m)
	}
	c.m[s] = r
	return r
}
