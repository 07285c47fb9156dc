package natsipc

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/procxy/procxy/ipc"
)

// authenticator is nats-server's client authentication for ipc's Users,
// Authenticate and DefaultPermissions: it decides who a client is the
// way an ipc server does, and gives nats-server the matching permissions.
type authenticator struct {
	o   ipc.ServerOptions
	ttl time.Duration
	log *slog.Logger
}

func newAuthenticator(o ipc.ServerOptions, ttl time.Duration) (*authenticator, error) {
	perms := []*ipc.Permissions{o.DefaultPermissions}
	for _, u := range o.Users {
		perms = append(perms, u.Permissions)
	}
	for _, p := range perms {
		if err := checkPermissions(p); err != nil {
			return nil, err
		}
	}
	l := o.Logger
	if l == nil {
		l = slog.Default()
	}
	return &authenticator{o: o, ttl: ttl, log: l}, nil
}

func checkPermissions(p *ipc.Permissions) error {
	if p == nil {
		return nil
	}
	for _, list := range [][]string{p.Publish.Allow, p.Publish.Deny, p.Subscribe.Allow, p.Subscribe.Deny} {
		for _, s := range list {
			if !ipc.ValidSubject(s) {
				return fmt.Errorf("natsipc: permission pattern %q: %w", s, ipc.ErrBadSubject)
			}
		}
	}
	return nil
}

// Check implements server.Authentication.
func (a *authenticator) Check(c server.ClientAuthentication) bool {
	if c.Kind() != server.CLIENT {
		return false
	}
	co := c.GetOpts()
	info := ipc.ConnInfo{Name: co.Name, Token: co.Token, UID: -1, GID: -1, PID: -1}
	if addr := c.RemoteAddress(); addr != nil {
		info.Remote = addr.String()
	}
	if st := c.GetTLSConnectionState(); st != nil && len(st.PeerCertificates) > 0 {
		info.Cert = st.PeerCertificates[0]
	}
	u, why := a.identify(info)
	if u == nil {
		// Never the secret: who tried and why it failed.
		a.log.Info("natsipc: authentication failed", "name", info.Name, "remote", info.Remote, "why", why)
		return false
	}
	perms := u.Permissions
	if perms == nil {
		perms = a.o.DefaultPermissions
	}
	c.RegisterUser(&server.User{Username: u.Name, Permissions: natsPermissions(perms, a.ttl)})
	a.log.Debug("natsipc: authenticated", "user", u.Name, "remote", info.Remote)
	return true
}

// identify finds the user a client is, as ipc's server does: the custom
// Authenticate function if set, else the first User whose token or
// certificate subject matches. (Users identified by a Unix peer uid never
// match: NATS clients come over TCP.) Without users, anyone is
// "anonymous" (or their certificate subject).
func (a *authenticator) identify(info ipc.ConnInfo) (*ipc.User, string) {
	o := &a.o
	if o.Authenticate != nil {
		ctx := context.Background()
		if d := or(o.AuthTimeout, ipc.DefaultAuthTimeout); d > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		u, err := o.Authenticate(ctx, info)
		if err != nil || u == nil {
			return nil, fmt.Sprint("refused: ", err)
		}
		return u, ""
	}
	subject := ""
	if info.Cert != nil {
		subject = info.Cert.Subject.String()
	}
	if len(o.Users) == 0 {
		name := "anonymous"
		if subject != "" {
			name = subject
		}
		return &ipc.User{Name: name}, ""
	}
	for i := range o.Users {
		u := &o.Users[i]
		switch {
		case u.Token != "":
			if info.Token != "" && subtle.ConstantTimeCompare([]byte(info.Token), []byte(u.Token)) == 1 {
				return u, ""
			}
		case u.CertSubject != "":
			if subject != "" && subject == u.CertSubject {
				return u, ""
			}
		}
	}
	switch {
	case info.Token != "":
		return nil, "wrong token"
	case subject == "":
		return nil, "no token given"
	}
	return nil, "no user matches"
}

// natsPermissions translates ipc permissions, which follow NATS's
// semantics, into nats-server's. Two additions keep the library working
// under an allow list: the cancellation subjects (CancelPrefix + ">") may
// be published and subscribed, as the ipc server's cancellations need no
// permission; and AllowResponses becomes a response permission without a
// message limit (streams answer with many messages) that lasts ttl.
func natsPermissions(p *ipc.Permissions, ttl time.Duration) *server.Permissions {
	if p == nil {
		return nil
	}
	np := &server.Permissions{
		Publish:   subjectPermission(p.Publish),
		Subscribe: subjectPermission(p.Subscribe),
	}
	if p.AllowResponses && len(p.Publish.Allow) > 0 {
		// With no allow list everything may be published anyway; and
		// nats-server would read a response permission as "deny the rest".
		np.Response = &server.ResponsePermission{MaxMsgs: -1, Expires: ttl}
	}
	return np
}

func subjectPermission(sp ipc.SubjectPermission) *server.SubjectPermission {
	if len(sp.Allow) == 0 && len(sp.Deny) == 0 {
		return nil
	}
	out := &server.SubjectPermission{Allow: slices.Clone(sp.Allow), Deny: slices.Clone(sp.Deny)}
	if len(out.Allow) > 0 {
		out.Allow = append(out.Allow, CancelPrefix+">")
	}
	return out
}
