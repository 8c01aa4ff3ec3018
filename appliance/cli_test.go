package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// runCLI calls run with args and a fixed environment; it returns the exit
// code and what was written to stdout and stderr.
func runCLI(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	e := &Env{
		Stdin:  strings.NewReader(""),
		Stdout: &out,
		Stderr: &errOut,
		Getenv: func(k string) string {
			for _, kv := range env {
				if name, v, ok := strings.Cut(kv, "="); ok && name == k {
					return v
				}
			}
			return ""
		},
		Environ: func() []string { return env },
	}
	code = run(context.Background(), e, args)
	return code, out.String(), errOut.String()
}

func TestRunDispatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string // substrings
		wantStderr []string // substrings
	}{
		{"no arguments", nil, ExitUsage, nil, []string{"Usage: regent <command>", "config ", "run "}},
		{"help flag", []string{"-h"}, ExitOK, []string{"Usage: regent <command>", "version", "members"}, nil},
		{"long help flag", []string{"--help"}, ExitOK, []string{"Usage: regent <command>"}, nil},
		{"help command", []string{"help"}, ExitOK, []string{"Usage: regent <command>"}, nil},
		{"help for a subcommand", []string{"help", "config", "show"}, ExitOK, []string{"Usage: regent config show [flags]", "-quorum"}, nil},
		{"unknown command", []string{"confg"}, ExitUsage, nil, []string{`regent: unknown command "confg" (did you mean "config"?)`, "Run 'regent -h' for usage."}},
		{"unknown command without hint", []string{"frobnicate"}, ExitUsage, nil, []string{`regent: unknown command "frobnicate"` + "\n"}},
		{"unknown flag before command", []string{"--vrsion"}, ExitUsage, nil, []string{`regent: unknown flag "--vrsion" (did you mean "version"?)`}},
		{"group without subcommand", []string{"config"}, ExitUsage, nil, []string{"Usage: regent config <command>", "validate", "show"}},
		{"group help", []string{"service", "-h"}, ExitOK, []string{"Usage: regent service <command>", "print-unit"}, nil},
		{"unknown subcommand", []string{"config", "shwo"}, ExitUsage, nil, []string{`regent config: unknown command "shwo" (did you mean "show"?)`}},
		{"unknown flag on a command", []string{"config", "show", "--quorom=2"}, ExitUsage, nil, []string{`regent config show: unknown flag "--quorom" (did you mean "quorum"?)`, "Run 'regent config show -h' for usage."}},
		{"unknown single-dash flag", []string{"version", "-jsn"}, ExitUsage, nil, []string{`unknown flag "-jsn" (did you mean "json"?)`}},
		{"bad flag value", []string{"config", "validate", "-q=maybe"}, ExitUsage, nil, []string{"regent config validate: invalid boolean value"}},
		{"missing flag value", []string{"config", "show", "-config"}, ExitUsage, nil, []string{"flag needs an argument: -config"}},
		{"unexpected argument", []string{"version", "extra"}, ExitUsage, nil, []string{`regent version: unexpected argument "extra"`}},
		{"version flag", []string{"--version"}, ExitOK, []string{"regent " + Version + " ("}, nil},
		{"version", []string{"version"}, ExitOK, []string{"regent " + Version + " (" + runtime.Version()}, nil},
		{"command help", []string{"version", "-h"}, ExitOK, []string{"Usage: regent version [flags]", "Print the version.", "-json"}, nil},
		{"hidden command still runs", []string{"master", "-h"}, ExitOK, []string{"Usage: regent master"}, nil},
		{"flags after a non-flag are arguments", []string{"version", "x", "--bogus"}, ExitUsage, nil, []string{`unexpected argument "x"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, nil, tt.args...)
			if code != tt.wantCode {
				t.Errorf("regent %q: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", tt.args, code, tt.wantCode, stdout, stderr)
			}
			for _, want := range tt.wantStdout {
				if !strings.Contains(stdout, want) {
					t.Errorf("regent %q: stdout:\n%s\nwant it to contain %q", tt.args, stdout, want)
				}
			}
			for _, want := range tt.wantStderr {
				if !strings.Contains(stderr, want) {
					t.Errorf("regent %q: stderr:\n%s\nwant it to contain %q", tt.args, stderr, want)
				}
			}
			if len(tt.wantStdout) == 0 && stdout != "" {
				t.Errorf("regent %q: unexpected stdout:\n%s", tt.args, stdout)
			}
		})
	}
}

// leaves returns every runnable command's arguments, e.g. ["config", "show"].
func leaves(c *command, prefix []string) [][]string {
	if c.run != nil {
		return [][]string{prefix}
	}
	var out [][]string
	for _, s := range c.subs {
		out = append(out, leaves(s, append(prefix[:len(prefix):len(prefix)], s.name))...)
	}
	return out
}

// TestEveryCommandHasHelp checks that -h works on every command, prints its
// usage on stdout and exits 0, and that every command refuses an unknown
// flag with exit 2.
func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	all := leaves(commands(), nil)
	if len(all) < 18 {
		t.Fatalf("found %d commands, want at least 18: %q", len(all), all)
	}
	for _, args := range all {
		t.Run(strings.Join(args, "_"), func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCLI(t, nil, append(args, "-h")...)
			wantUsage := "Usage: regent " + strings.Join(args, " ")
			if code != ExitOK || !strings.HasPrefix(stdout, wantUsage) {
				t.Errorf("regent %s -h: exit %d, stdout:\n%s\nstderr:\n%s\nwant exit 0 and stdout starting %q", strings.Join(args, " "), code, stdout, stderr, wantUsage)
			}
			code, _, stderr = runCLI(t, nil, append(args, "--no-such-flag")...)
			if code != ExitUsage || !strings.Contains(stderr, `unknown flag "--no-such-flag"`) {
				t.Errorf("regent %s --no-such-flag: exit %d, stderr:\n%s\nwant exit 2 and an unknown flag error", strings.Join(args, " "), code, stderr)
			}
		})
	}
}

func TestVersionJSON(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runCLI(t, nil, "version", "--json")
	if code != ExitOK {
		t.Fatalf("regent version --json: exit %d, stderr:\n%s", code, stderr)
	}
	var got VersionInfo
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("regent version --json printed %q: %v", stdout, err)
	}
	if diff := cmp.Diff(CurrentVersion(), got); diff != "" {
		t.Errorf("regent version --json (-want +got):\n%s", diff)
	}
}

func TestDidYouMean(t *testing.T) {
	t.Parallel()
	names := []string{"config", "members", "run", "service", "status", "version"}
	tests := []struct {
		word, want string
	}{
		{"confg", ` (did you mean "config"?)`},
		{"stauts", ` (did you mean "status"?)`},
		{"rnu", ` (did you mean "run"?)`},
		{"version", ` (did you mean "version"?)`},
		{"xyz", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := didYouMean(tt.word, names); got != tt.want {
			t.Errorf("didYouMean(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"abc", "", 3},
		{"", "abc", 3},
		{"kitten", "sitting", 3},
		{"rnu", "run", 1},
		{"shwo", "show", 1},
		{"quorom", "quorum", 1},
		{"same", "same", 0},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestMainEntryPoint calls Main itself, the entry point cmd/regent calls.
func TestMainEntryPoint(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := Main(context.Background(), []string{"version"}, strings.NewReader(""), &out, &errOut); code != ExitOK {
		t.Fatalf("Main(version) = %d, stderr %q", code, errOut.String())
	}
	if want := CurrentVersion().String() + "\n"; out.String() != want {
		t.Errorf("Main(version) printed %q, want %q", out.String(), want)
	}
	if code := Main(context.Background(), []string{"nope"}, strings.NewReader(""), &out, &errOut); code != ExitUsage {
		t.Errorf("Main(nope) = %d, want %d", code, ExitUsage)
	}
}

func TestUnknownFlag(t *testing.T) {
	t.Parallel()
	newFS := func() *flag.FlagSet {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.Bool("q", false, "")
		fs.String("config", "", "")
		return fs
	}
	tests := []struct {
		args []string
		want string // "" = none
	}{
		{nil, ""},
		{[]string{"-q", "--config", "x"}, ""},
		{[]string{"-config", "-bogus"}, ""}, // -bogus is -config's value
		{[]string{"--config=x", "--bogus"}, "--bogus"},
		{[]string{"-q", "-bogus=1"}, "-bogus"},
		{[]string{"arg", "-bogus"}, ""}, // flags end at the first argument
		{[]string{"--", "-bogus"}, ""},  // and at --
		{[]string{"-", "-bogus"}, ""},   // "-" is an argument
		{[]string{"-h", "-bogus"}, ""},  // help wins
	}
	for _, tt := range tests {
		got, found := unknownFlag(newFS(), tt.args)
		if got != tt.want || found != (tt.want != "") {
			t.Errorf("unknownFlag(%q) = %q, %v; want %q", tt.args, got, found, tt.want)
		}
	}
}
