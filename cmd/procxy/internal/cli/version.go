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

Version prints the version of the procxy command's module (a release tag,
a pseudo-version, or "(devel)" for a build in a checkout) and of the procxy
library it was built with, the commit, its time and whether the tree had
changes (from the build's VCS stamp), and the Go version and platform.
"procxy --version" is the same.
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
	Module         string `json:"module"`
	Version        string `json:"version"`
	Library        string `json:"library"`         // the procxy library module the command was built with
	LibraryVersion string `json:"library_version"` // its version, or "(devel)" from a checkout
	LibraryReplace string `json:"library_replace,omitempty"`
	Revision       string `json:"revision,omitempty"`
	Time           string `json:"time,omitempty"`
	Modified       bool   `json:"modified,omitempty"`
	GoVersion      string `json:"go"`
	Platform       string `json:"platform"`
}

// The command's module and the library's: the command is a module of its
// own, so that the library does not depend on what only the command uses.
const (
	commandModule = "github.com/procxy/procxy/cmd/procxy"
	libraryModule = "github.com/procxy/procxy"
)

func buildVersion() versionInfo {
	v := versionInfo{Module: commandModule, Version: "(unknown)", Library: libraryModule, LibraryVersion: "(unknown)",
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	// The main module is the command's, whether it was built in a
	// checkout, installed with go install, or is a test binary of it.
	if bi.Main.Path != "" {
		v.Module = bi.Main.Path
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	for _, d := range bi.Deps {
		if d.Path != libraryModule {
			continue
		}
		v.LibraryVersion = d.Version
		if r := d.Replace; r != nil { // a replace directive: a checkout's ../..
			v.LibraryReplace = r.Path
			if r.Version != "" {
				v.LibraryReplace += " " + r.Version
			}
		}
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
	lib := v.LibraryVersion
	if v.LibraryReplace != "" {
		lib += " => " + v.LibraryReplace
	}
	fmt.Fprintf(inv.stdout, "  library   %s %s\n", v.Library, lib)
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
