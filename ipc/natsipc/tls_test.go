package natsipc_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/procxy/procxy/internal/testpki"
	"github.com/procxy/procxy/ipc"
	"github.com/procxy/procxy/ipc/natsipc"
)

// TestMutualTLS: on an embedded server that requires client
// certificates, a user is matched by its certificate's subject and gets
// its permissions; a client without a certificate cannot connect.
func TestMutualTLS(t *testing.T) {
	ca := testpki.NewCA(t)
	srv := startServer(t, natsipc.ServerOptions{IPC: ipc.ServerOptions{
		TLS: &tls.Config{
			Certificates: []tls.Certificate{ca.Issue(t, "server", x509.ExtKeyUsageServerAuth)},
			ClientCAs:    ca.Pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
		},
		Users: []ipc.User{{Name: "worker", CertSubject: "CN=worker", Permissions: &ipc.Permissions{
			Publish: ipc.SubjectPermission{Allow: []string{"jobs.>"}},
		}}},
	}})
	worker := connect(t, srv.URL(), ipc.TLS(&tls.Config{
		RootCAs: ca.Pool, Certificates: []tls.Certificate{ca.Issue(t, "worker", x509.ExtKeyUsageClientAuth)},
	}))
	if err := worker.PublishSync(t.Context(), ipc.NewMsg("jobs.1", nil)); err != nil {
		t.Errorf("the worker's allowed publish: %v", err)
	}
	if err := worker.PublishSync(t.Context(), ipc.NewMsg("admin.1", nil)); !errors.Is(err, ipc.ErrPermission) {
		t.Errorf("the worker's denied publish = %v, want ErrPermission", err)
	}
	// A certificate of nobody known, and none at all.
	for name, certs := range map[string][]tls.Certificate{
		"unknown subject": {ca.Issue(t, "stranger", x509.ExtKeyUsageClientAuth)},
		"no certificate":  nil,
	} {
		t.Run(name, func(t *testing.T) {
			c, err := natsipc.Connect(t.Context(), srv.URL(), ipc.TLS(&tls.Config{RootCAs: ca.Pool, Certificates: certs}))
			if err == nil {
				c.Close()
				t.Fatal("connected")
			}
			if certs != nil && !errors.Is(err, ipc.ErrAuth) {
				t.Errorf("Connect with an unknown certificate = %v, want ErrAuth", err)
			}
			t.Log(err)
		})
	}
}
