package delve

import (
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		spec  string
		names []string
		want  Config
		ok    bool
	}{
		{"", []string{"main.T"}, Config{}, false},
		{"main.T", []string{"main.T"}, Config{}, true},
		{"other, main.T:wait", []string{"main.T"}, Config{Wait: true}, true},
		{"*", []string{"fn"}, Config{}, true},
		{"main.T", []string{"", "main.U"}, Config{}, false},
		{",:wait", []string{"main.T"}, Config{}, false},
	}
	for _, tt := range tests {
		got, ok := parse(tt.spec, tt.names)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parse(%q, %q) = %+v, %v; want %+v, %v", tt.spec, tt.names, got, ok, tt.want, tt.ok)
		}
	}
}

func TestCommand(t *testing.T) {
	t.Setenv(EnvDlv, "")
	prog, args := Config{Wait: true}.Command("/bin/child", []string{"-v"})
	want := []string{"exec", "--headless", "--api-version=2", "--accept-multiclient", "--listen=127.0.0.1:0", "/bin/child", "--", "-v"}
	if prog != "dlv" || !slices.Equal(args, want) {
		t.Errorf("Command = %s %q, want dlv %q", prog, args, want)
	}
	t.Setenv(EnvDlv, "/opt/dlv")
	prog, args = Config{Listen: "127.0.0.1:2345"}.Command("/bin/child", nil)
	want = []string{"exec", "--headless", "--api-version=2", "--accept-multiclient", "--listen=127.0.0.1:2345", "--continue", "/bin/child"}
	if prog != "/opt/dlv" || !slices.Equal(args, want) {
		t.Errorf("Command = %s %q, want /opt/dlv %q", prog, args, want)
	}
}

func TestAddress(t *testing.T) {
	if addr, ok := Address("API server listening at: 127.0.0.1:40123"); !ok || addr != "127.0.0.1:40123" {
		t.Errorf("Address = %q, %v; want 127.0.0.1:40123", addr, ok)
	}
	for _, line := range []string{"", "hello", "API server listening at: "} {
		if _, ok := Address(line); ok {
			t.Errorf("Address(%q) ok, want not", line)
		}
	}
}
