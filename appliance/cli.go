package appliance

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/regent-ha/regent/supervisor"
)

// Exit codes of every regent command. They follow the contract between the
// master, the supervisor and systemd in design.md §2; the supervisor defines
// the ones it acts on.
const (
	// ExitOK means the command did what was asked, or stopped on request.
	ExitOK = supervisor.ExitOK
	// ExitFailure is a transient failure: the supervisor restarts a master
	// that exits with it.
	ExitFailure = 1
	// ExitUsage is a command-line mistake: unknown command or flag, bad
	// argument.
	ExitUsage = 2
	// ExitConfig (EX_CONFIG) is a permanent failure: bad configuration,
	// identity or cluster mismatch, corrupt or incompatible data. Neither the
	// supervisor nor systemd restarts a process that exits with it.
	ExitConfig = supervisor.ExitConfig
)

// Env is what every subcommand gets from the process: its standard streams and
// its environment. Tests build one with buffers and a fixed environment.
type Env struct {
	// Stdin is the command's standard input.
	Stdin io.Reader
	// Stdout receives the command's output: help it was asked for, reports,
	// the configuration it shows.
	Stdout io.Writer
	// Stderr receives logs, diagnostics and usage errors.
	Stderr io.Writer
	// Getenv returns the value of an environment variable, or "" when unset.
	Getenv func(key string) string
	// Environ returns the environment as "NAME=value" pairs; the
	// configuration sees them as env.NAME.
	Environ func() []string

	// cmd is the command being run; set by dispatch on a copy of the Env.
	cmd *command
}

// command is one node of the command tree: a leaf with a run function, or a
// group of subcommands.
type command struct {
	name    string
	args    string // what follows the command name in the usage line
	summary string // one line, lower case, no final period
	hidden  bool   // dispatched but not listed
	run     func(ctx context.Context, e *Env, args []string) int
	subs    []*command
	parent  *command
}

// commands builds the command tree. It is a function, not a variable, because
// the run functions reach the tree through Env and a package-level table would
// be an initialisation cycle.
func commands() *command {
	root := &command{name: "regent", subs: []*command{
		{name: "run", args: "[flags]", summary: "supervise a master: restart it with backoff, relay readiness to systemd (the service's command)", run: cmdRun},
		{name: "master", args: "[flags]", summary: "run one fail-fast master process (started by run)", run: cmdMaster, hidden: true},
		{name: "dev", args: "[flags]", summary: "start a local cluster of three masters on loopback for a first look", run: cmdDev},
		{name: "status", args: "[flags]", summary: "show the status of the local appliance", run: cmdStatus},
		{name: "config", summary: "check and show the configuration", subs: []*command{
			{name: "validate", args: "[flags]", summary: "check the configuration and print every problem; exit 0 or 78", run: cmdConfigValidate},
			{name: "show", args: "[flags]", summary: "print the effective configuration and where each value came from", run: cmdConfigShow},
		}},
		{name: "version", args: "[flags]", summary: "print the version", run: cmdVersion},
		{name: "service", summary: "install and inspect the systemd service", subs: []*command{
			{name: "install", args: "[flags]", summary: "install the systemd unit and enable it", run: cmdServiceInstall},
			{name: "uninstall", args: "[flags]", summary: "stop, disable and remove the systemd unit", run: cmdServiceUninstall},
			{name: "status", args: "[flags]", summary: "show the state of the systemd service", run: cmdServiceStatus},
			{name: "print-unit", args: "[flags]", summary: "print the systemd unit file", run: cmdServicePrintUnit},
		}},
		{name: "log", summary: "work with the local replica of the replicated log", subs: []*command{
			{name: "bench", args: "[flags]", summary: "measure write throughput and latency of the replicated log", run: cmdLogBench},
			{name: "bench-replica", args: "[flags]", summary: "run one replica of log bench -processes (started by log bench)", run: cmdLogBenchReplica, hidden: true},
			{name: "inspect", args: "[flags]", summary: "print the local replica's metadata and positions", run: cmdLogInspect},
			{name: "initialize", args: "[flags]", summary: "initialize an empty replica so that it may vote", run: cmdLogInitialize},
		}},
		{name: "members", summary: "list and change the masters of the cluster", subs: []*command{
			{name: "list", args: "[flags]", summary: "list the members of the replicated log", run: cmdMembersList},
			{name: "add", args: "[flags] ADDRESS", summary: "add a master to the voter set", run: cmdMembersAdd},
			{name: "remove", args: "[flags] REPLICA", summary: "remove a master from the voter set", run: cmdMembersRemove},
		}},
		{name: "bench", args: "[flags]", summary: "run the end-to-end benchmark against a cluster", run: cmdBench},
	}}
	link(root)
	return root
}

func link(c *command) {
	for _, s := range c.subs {
		s.parent = c
		link(s)
	}
}

// path is the command's full name, e.g. "regent config show".
func (c *command) path() string {
	if c.parent == nil {
		return c.name
	}
	return c.parent.path() + " " + c.name
}

func (c *command) lookup(name string) *command {
	for _, s := range c.subs {
		if s.name == name {
			return s
		}
	}
	return nil
}

// Main runs the regent command line with args (without the program name) and
// returns the process's exit code. ctx is cancelled when the process is asked
// to stop (SIGINT, SIGTERM).
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &Env{
		Stdin:   stdin,
		Stdout:  stdout,
		Stderr:  stderr,
		Getenv:  os.Getenv,
		Environ: os.Environ,
	}
	return run(ctx, e, args)
}

// run dispatches args to a subcommand. It is what tests call.
func run(ctx context.Context, e *Env, args []string) int {
	return dispatch(ctx, e, commands(), args)
}

func isHelp(arg string) bool {
	switch arg {
	case "-h", "-help", "--help", "help":
		return true
	}
	return false
}

func dispatch(ctx context.Context, e *Env, c *command, args []string) int {
	if c.run != nil {
		ce := *e
		ce.cmd = c
		return c.run(ctx, &ce, args)
	}
	if len(args) == 0 {
		c.printUsage(e.Stderr)
		return ExitUsage
	}
	if isHelp(args[0]) {
		if args[0] == "help" && len(args) > 1 {
			// "regent help config show" is "regent config show -h".
			return dispatch(ctx, e, c, append(args[1:len(args):len(args)], "-h"))
		}
		c.printUsage(e.Stdout)
		return ExitOK
	}
	sub := c.lookup(args[0])
	if sub == nil && c.parent == nil && (args[0] == "--version" || args[0] == "-version") {
		sub = c.lookup("version") // the conventional spelling
	}
	if sub == nil {
		what := "command"
		if strings.HasPrefix(args[0], "-") {
			what = "flag"
		}
		var names []string
		for _, s := range c.subs {
			if !s.hidden {
				names = append(names, s.name)
			}
		}
		fmt.Fprintf(e.Stderr, "%s: unknown %s %q%s\nRun '%s -h' for usage.\n",
			c.path(), what, args[0], didYouMean(strings.TrimLeft(args[0], "-"), names), c.path())
		return ExitUsage
	}
	return dispatch(ctx, e, sub, args[1:])
}

func (c *command) printUsage(w io.Writer) {
	if c.parent == nil {
		fmt.Fprintf(w, "regent is a highly available master with a built-in supervisor.\n\n")
	} else if c.summary != "" {
		fmt.Fprintf(w, "%s: %s.\n\n", c.path(), c.summary)
	}
	fmt.Fprintf(w, "Usage: %s <command> [arguments]\n\nCommands:\n", c.path())
	width := 0
	for _, s := range c.subs {
		width = max(width, len(s.name))
	}
	for _, s := range c.subs {
		if !s.hidden {
			fmt.Fprintf(w, "  %-*s  %s\n", width, s.name, s.summary)
		}
	}
	fmt.Fprintf(w, "\nRun '%s <command> -h' for a command's flags.\n", c.path())
}

// flagSet returns an empty flag set for the running command. Its usage text
// names the command, says what it does and lists the flags; parseFlags prints
// it on -h.
func (e *Env) flagSet() *flag.FlagSet {
	c := e.cmd
	if c == nil {
		c = &command{name: "regent"}
	}
	fs := flag.NewFlagSet(c.path(), flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

func (e *Env) printCommandUsage(w io.Writer, fs *flag.FlagSet) {
	c := e.cmd
	if c == nil {
		c = &command{name: "regent"}
	}
	fmt.Fprintf(w, "Usage: %s %s\n", c.path(), c.args)
	if c.summary != "" {
		fmt.Fprintf(w, "\n%s.\n", strings.ToUpper(c.summary[:1])+c.summary[1:])
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprintf(w, "\nFlags (-name or --name):\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
}

// parseFlags parses args into fs. It returns ok = false when the command must
// return at once with code: after printing help (-h, ExitOK) or a usage error
// (ExitUsage). An unknown flag gets a "did you mean" hint.
func (e *Env) parseFlags(fs *flag.FlagSet, args []string) (code int, ok bool) {
	if name, found := unknownFlag(fs, args); found {
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		return e.usageError("unknown flag %q%s", name, didYouMean(strings.TrimLeft(name, "-"), names)), false
	}
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		e.printCommandUsage(e.Stdout, fs)
		return ExitOK, false
	}
	if err != nil {
		return e.usageError("%v", err), false
	}
	return ExitOK, true
}

// usageError reports a command-line mistake on Stderr and returns ExitUsage.
func (e *Env) usageError(format string, args ...any) int {
	path := "regent"
	if e.cmd != nil {
		path = e.cmd.path()
	}
	fmt.Fprintf(e.Stderr, "%s: %s\nRun '%s -h' for usage.\n", path, fmt.Sprintf(format, args...), path)
	return ExitUsage
}

// noArgs returns ok = false and a usage error when fs has positional
// arguments left after parsing.
func (e *Env) noArgs(fs *flag.FlagSet) (code int, ok bool) {
	if fs.NArg() > 0 {
		return e.usageError("unexpected argument %q", fs.Arg(0)), false
	}
	return ExitOK, true
}

// unknownFlag finds the first flag in args that fs does not define, as the
// flag package would meet it: flags end at "--" or at the first argument that
// is not a flag.
func unknownFlag(fs *flag.FlagSet, args []string) (string, bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" || len(a) < 2 || a[0] != '-' {
			return "", false
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		hasValue := false
		if j := strings.IndexByte(name, '='); j >= 0 {
			name, hasValue = name[:j], true
		}
		if name == "h" || name == "help" {
			return "", false
		}
		f := fs.Lookup(name)
		if f == nil {
			return a[:strings.IndexByte(a+"=", '=')], true
		}
		if bf, isBool := f.Value.(interface{ IsBoolFlag() bool }); isBool && bf.IsBoolFlag() {
			continue
		}
		if !hasValue {
			i++ // the flag's value
		}
	}
	return "", false
}

// didYouMean returns ` (did you mean "x"?)` for the candidate nearest to
// word, or "" when none is near enough.
func didYouMean(word string, candidates []string) string {
	if best, ok := nearest(word, candidates); ok {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	return ""
}

// nearest returns the candidate nearest to word when it is close enough to
// be a likely typo: at most a third of the word's length in edits, at least
// one.
func nearest(word string, candidates []string) (string, bool) {
	best, bestDist := "", 0
	sorted := append([]string(nil), candidates...)
	sort.Strings(sorted)
	for _, c := range sorted {
		d := editDistance(word, c)
		if best == "" || d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" || bestDist > max(1, len(word)/3) {
		return "", false
	}
	return best, true
}

// editDistance is the optimal string alignment distance between a and b,
// in bytes: insertions, deletions, substitutions and transpositions of two
// neighbours ("rnu" is one edit from "run") each cost one.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
