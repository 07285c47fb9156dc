package ipc

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/procxy/procxy/transport"
)

// Identity is who a client is, as the server established it.
type Identity struct {
	// Name is the matched User's name; without users, "uid:<uid>" for a
	// Unix-socket peer, the certificate subject for a TLS client with a
	// certificate, or "anonymous".
	Name   string
	Method string // how it was established: "token", "uid", "cert", "custom" or "none"
	UID    int    // the peer process's user id on a Unix socket (Linux), else -1
	GID    int
	PID    int
	Cert   string // the TLS client certificate's subject, if any
}

// User is an identity the server accepts, with what it may do. A client
// matches a user by Token, or — when the user has no token — by the
// peer's UID on a Unix socket or by its TLS certificate's subject.
type User struct {
	Name        string
	Token       string       // the client's Token option must equal it
	UID         *int         // the Unix peer's user id must equal it
	CertSubject string       // the TLS client certificate's subject (as in pkix.Name.String) must equal it
	Permissions *Permissions // nil: DefaultPermissions
	RateLimit   *RateLimit   // nil: DefaultRateLimit
}

// ConnInfo is what a server knows about a connecting client, for a custom
// Authenticate function.
type ConnInfo struct {
	Name   string // the client's Name option
	Token  string
	Remote string // the remote address
	UID    int    // Unix peer credentials (Linux), or -1
	GID    int
	PID    int
	Cert   *x509.Certificate // the TLS client certificate, if any
}

// Permissions say what an identity may publish and subscribe to, with
// NATS's semantics: a subject is allowed if Allow is empty or one of its
// patterns matches, and no Deny pattern matches; Deny wins. A subscription
// with wildcards is allowed if an Allow pattern covers all it can match;
// messages on subjects it matches that a Deny pattern matches are not
// delivered to it. With AllowResponses, the identity may publish to the
// reply subject of any request it received, even if Publish does not
// allow that subject.
type Permissions struct {
	Publish        SubjectPermission
	Subscribe      SubjectPermission
	AllowResponses bool
}

// SubjectPermission lists subject patterns allowed and denied.
type SubjectPermission struct {
	Allow []string
	Deny  []string
}

// RateLimit bounds what one identity (all its connections together) may
// publish. Past it, a message is dropped and its sender gets ErrRateLimited.
type RateLimit struct {
	MsgsPerSecond  float64 // 0: unlimited
	BytesPerSecond float64 // 0: unlimited
	Burst          int     // messages (and Burst × average size bytes) allowed at once; 0: one second's worth
}

func (p *Permissions) validate() error {
	for _, list := range [][]string{p.Publish.Allow, p.Publish.Deny, p.Subscribe.Allow, p.Subscribe.Deny} {
		for _, s := range list {
			if err := checkSubject(s, true); err != nil {
				return fmt.Errorf("ipc: permission pattern: %w", err)
			}
		}
	}
	return nil
}

// canPublish reports whether subject (a literal) may be published.
func (p *Permissions) canPublish(subject string) bool {
	return p == nil || allowed(p.Publish, subject)
}

func allowed(sp SubjectPermission, subject string) bool {
	ok := len(sp.Allow) == 0
	for _, a := range sp.Allow {
		if SubjectMatches(a, subject) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for _, d := range sp.Deny {
		if SubjectMatches(d, subject) {
			return false
		}
	}
	return true
}

// canSubscribe reports whether pattern may be subscribed to.
func (p *Permissions) canSubscribe(pattern string) bool {
	if p == nil {
		return true
	}
	ok := len(p.Subscribe.Allow) == 0
	for _, a := range p.Subscribe.Allow {
		if covers(a, pattern) {
			ok = true
			break
		}
	}
	if !ok {
		return false
	}
	for _, d := range p.Subscribe.Deny {
		if covers(d, pattern) {
			return false
		}
	}
	return true
}

// canReceive reports whether a message on subject may be delivered.
func (p *Permissions) canReceive(subject string) bool {
	if p == nil {
		return true
	}
	for _, d := range p.Subscribe.Deny {
		if SubjectMatches(d, subject) {
			return false
		}
	}
	return true
}

// covers reports whether every subject pattern sub can match is matched
// by pattern.
func covers(pattern, sub string) bool {
	for {
		pt, prest, pmore := strings.Cut(pattern, ".")
		st, srest, smore := strings.Cut(sub, ".")
		switch {
		case pt == ">":
			return true
		case st == ">":
			return false // sub matches more tokens than pattern can
		case pt == "*":
		case st == "*" || pt != st:
			return false
		}
		if !pmore || !smore {
			return pmore == smore
		}
		pattern, sub = prest, srest
	}
}

// authenticate finds who a client is.
func (s *Server) authenticate(ctx context.Context, nc net.Conn, ci connectInfo) (Identity, *User, error) {
	id := Identity{UID: -1, GID: -1, PID: -1, Method: "none"}
	info := ConnInfo{Name: ci.Name, Token: ci.Token, Remote: nc.RemoteAddr().String(), UID: -1, GID: -1, PID: -1}
	if uc, ok := nc.(*net.UnixConn); ok {
		if uid, gid, pid, err := transport.PeerCred(uc); err == nil {
			id.UID, id.GID, id.PID = uid, gid, pid
			info.UID, info.GID, info.PID = uid, gid, pid
		}
	}
	if tc, ok := nc.(*tls.Conn); ok {
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			info.Cert = certs[0]
			id.Cert = certs[0].Subject.String()
		}
	}
	o := &s.opts
	if o.Authenticate != nil {
		u, err := o.Authenticate(ctx, info)
		if err != nil {
			return id, nil, fmt.Errorf("%w: %w", ErrAuth, err)
		}
		id.Name, id.Method = u.Name, "custom"
		return id, u, nil
	}
	if len(o.Users) == 0 {
		switch {
		case id.Cert != "":
			id.Name, id.Method = id.Cert, "cert"
		case id.UID >= 0:
			id.Name, id.Method = "uid:"+strconv.Itoa(id.UID), "uid"
		default:
			id.Name = "anonymous"
		}
		return id, nil, nil
	}
	for i := range o.Users {
		u := &o.Users[i]
		switch {
		case u.Token != "":
			if ci.Token != "" && subtle.ConstantTimeCompare([]byte(ci.Token), []byte(u.Token)) == 1 {
				id.Name, id.Method = u.Name, "token"
				return id, u, nil
			}
		case u.UID != nil:
			if id.UID >= 0 && *u.UID == id.UID {
				id.Name, id.Method = u.Name, "uid"
				return id, u, nil
			}
		case u.CertSubject != "":
			if id.Cert != "" && id.Cert == u.CertSubject {
				id.Name, id.Method = u.Name, "cert"
				return id, u, nil
			}
		}
	}
	// Say what the client lacks; never the token.
	var why string
	switch {
	case ci.Token != "":
		why = "wrong token"
	case id.Cert != "" && o.has(func(u *User) bool { return u.CertSubject != "" }):
		why = fmt.Sprintf("certificate subject %q matches no user", id.Cert)
	case id.UID >= 0 && o.has(func(u *User) bool { return u.UID != nil }):
		why = fmt.Sprintf("uid %d matches no user", id.UID)
	case o.has(func(u *User) bool { return u.Token != "" }):
		why = "no token given"
	default:
		why = "no user matches"
	}
	return id, nil, fmt.Errorf("%w: %s", ErrAuth, why)
}

// has reports whether some user is as fn says.
func (o *ServerOptions) has(fn func(*User) bool) bool {
	for i := range o.Users {
		if fn(&o.Users[i]) {
			return true
		}
	}
	return false
}

// limiter enforces one identity's RateLimit.
type limiter struct {
	msgs, bytes *rate.Limiter
}

// newLimiter makes the limiter for rl; the byte bucket holds at least
// minBytes, so that one message of the largest size can ever pass.
func newLimiter(rl *RateLimit, minBytes int) *limiter {
	if rl == nil || rl.MsgsPerSecond <= 0 && rl.BytesPerSecond <= 0 {
		return nil
	}
	l := &limiter{}
	if rl.MsgsPerSecond > 0 {
		burst := rl.Burst
		if burst <= 0 {
			burst = max(1, int(rl.MsgsPerSecond))
		}
		l.msgs = rate.NewLimiter(rate.Limit(rl.MsgsPerSecond), burst)
	}
	if rl.BytesPerSecond > 0 {
		burst := int(rl.BytesPerSecond)
		if rl.Burst > 0 && rl.MsgsPerSecond > 0 {
			burst = max(1, int(float64(rl.Burst)*rl.BytesPerSecond/rl.MsgsPerSecond))
		}
		l.bytes = rate.NewLimiter(rate.Limit(rl.BytesPerSecond), max(burst, minBytes, 1))
	}
	return l
}

// allow reports whether a message of n bytes may pass now.
func (l *limiter) allow(n int) bool {
	if l == nil {
		return true
	}
	if l.msgs != nil && !l.msgs.Allow() {
		return false
	}
	if l.bytes != nil && !l.bytes.AllowN(time.Now(), n) {
		return false
	}
	return true
}

// limiters keeps one limiter per identity, shared by its connections.
type limiters struct {
	mu sync.Mutex
	m  map[string]*limiter
}

func (ls *limiters) get(name string, rl *RateLimit, minBytes int) *limiter {
	if rl == nil {
		return nil
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l, ok := ls.m[name]; ok {
		return l
	}
	if ls.m == nil {
		ls.m = make(map[string]*limiter)
	}
	l := newLimiter(rl, minBytes)
	ls.m[name] = l
	return l
}
