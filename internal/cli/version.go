package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
)

func versionCommand() *command {
	return &command{
		name:    "version",
		summary: "print procxy's version and build information",
		usage: `usage: procxy version [-json]

Version prints the module version procxy was built from (a release tag,
a pseudo-version, or "(devel)" for a build in a checkout), the commit, its
time and whether the tree had changes (from the build's VCS stamp), and
the Go version and platform. "procxy --version" is the same.
`,
		setup: func(fs *flag.FlagSet) runFunc {
			asJSON := fs.Bool("json", false, "print JSON")
			return func(ctx context.Context, inv *invocation) error {
				if len(inv.args) > 0 {
					return usageErrorf("version takes no arguments")
				}
				return runVersion(ctx, inv, *asJSON)
			}
		},
	}
}

// versionInfo is procxy's build information.
type versionInfo struct {
	Module    string `json:"module"`
	Version   string `json:"version"`
	Revision  string `json:"revision,omitempty"`
	Time      string `json:"time,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go"`
	Platform  string `json:"platform"`
}

func buildVersion() versionInfo {
	v := versionInfo{Module: "github.com/procxy/procxy", Version: "(unknown)", GoVersion: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	// The procxy module is the main module when procxy is built from its
	// own checkout or installed with go install, and a dependency when
	// another program embeds the command (tests, for one).
	mod := &bi.Main
	for _, d := range bi.Deps {
		if d.Path == v.Module {
			mod = d
		}
	}
	if mod.Path != "" {
		v.Module = mod.Path
	}
	if mod.Version != "" {
		v.Version = mod.Version
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func runVersion(_ context.Context, inv *invocation, asJSON bool) error {
	v := buildVersion()
	if asJSON {
		b, _ := json.MarshalIndent(v, "", "  ")
		_, err := fmt.Fprintf(inv.stdout, "%s\n", b)
		return err
	}
	fmt.Fprintf(inv.stdout, "procxy %s\n", v.Version)
	fmt.Fprintf(inv.stdout, "  module    %s\n", v.Module)
	if v.Revision != "" {
		mod := ""
		if v.Modified {
			mod = " (with uncommitted changes)"
		}
		fmt.Fprintf(inv.stdout, "  commit    %s%s\n", v.Revision, mod)
		if v.Time != "" {
			fmt.Fprintf(inv.stdout, "  time      %s\n", v.Time)
		}
	}
	_, err := fmt.Fprintf(inv.stdout, "  go        %s %s\n", v.GoVersion, v.Platform)
	return err
}
