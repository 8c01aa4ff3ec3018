package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
)

// Version is regent's version. The Makefile sets it at link time from
// "git describe" with -ldflags "-X github.com/regent-ha/regent/appliance.Version=…";
// a plain "go build" leaves it "dev".
var Version = "dev"

// VersionInfo describes the running binary.
type VersionInfo struct {
	// Version is [Version].
	Version string `json:"version"`
	// GoVersion is the Go release that built the binary.
	GoVersion string `json:"go_version"`
	// Platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// CurrentVersion returns the running binary's [VersionInfo].
func CurrentVersion() VersionInfo {
	return VersionInfo{
		Version:   Version,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
}

// String formats v as "regent VERSION (GO PLATFORM)".
func (v VersionInfo) String() string {
	return fmt.Sprintf("regent %s (%s %s)", v.Version, v.GoVersion, v.Platform)
}

// cmdVersion runs "regent version".
func cmdVersion(_ context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	asJSON := fs.Bool("json", false, "print the version as a JSON object")
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := e.noArgs(fs); !ok {
		return code
	}
	v := CurrentVersion()
	if *asJSON {
		enc := json.NewEncoder(e.Stdout)
		if err := enc.Encode(v); err != nil {
			fmt.Fprintf(e.Stderr, "regent version: %v\n", err)
			return ExitFailure
		}
		return ExitOK
	}
	fmt.Fprintln(e.Stdout, v)
	return ExitOK
}
