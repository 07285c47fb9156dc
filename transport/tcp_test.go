package transport_test

import (
	"net"
	"testing"

	"github.com/procxy/procxy/transport"
)

func TestTCP(t *testing.T) {
	ln, err := transport.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	tests := []struct {
		name string
		dial func() (net.Conn, error)
	}{
		{"DialTCP", func() (net.Conn, error) { return transport.DialTCP(t.Context(), ln.Addr().String()) }},
		{"Dial", func() (net.Conn, error) { return transport.Dial(t.Context(), "tcp", ln.Addr().String()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := echoOnce(ln)
			c, err := tt.dial()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			roundTrip(t, c, "hello over tcp")
			if err := <-done; err != nil {
				t.Fatalf("server: %v", err)
			}
		})
	}
}

func TestDialErrors(t *testing.T) {
	ln, err := transport.ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens on addr any more
	tests := []struct {
		name string
		dial func() error
	}{
		{"unknown-network", func() error { _, err := transport.Dial(t.Context(), "udp", addr); return err }},
		{"refused-Dial", func() error { _, err := transport.Dial(t.Context(), "tcp", addr); return err }},
		{"refused-DialTCP", func() error { _, err := transport.DialTCP(t.Context(), addr); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.dial(); err == nil {
				t.Fatal("got nil error, want one")
			}
		})
	}
}
