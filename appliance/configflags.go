package appliance

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/hashicorp/hcl/v2"
)

// configFlags are the flags of every command that reads the configuration
// (run, master, config show, config validate): -config and the Mesos-style
// overrides (--quorum=2, --work_dir=…), each accepted with one or two dashes.
type configFlags struct {
	path      string
	pathGiven bool
	overrides []FlagValue
}

// ConfigFlagNames are the configuration settings that have a command-line
// flag, by flag name. -log-level is accepted as a spelling of --log_level.
func ConfigFlagNames() []string {
	var names []string
	for _, s := range settings {
		if s.flag != "" {
			names = append(names, s.flag)
		}
	}
	return names
}

// addConfigFlags registers -config and the configuration overrides on fs.
func addConfigFlags(fs *flag.FlagSet) *configFlags {
	cf := &configFlags{path: DefaultConfigPath}
	fs.Func("config", "configuration `path`: a file, or a directory of *.hcl files merged in lexical order (default "+DefaultConfigPath+")", func(v string) error {
		cf.path, cf.pathGiven = v, true
		return nil
	})
	def := DefaultConfig()
	for _, s := range settings {
		if s.flag == "" {
			continue
		}
		usage := s.usage + " (config " + s.name + ", default " + showValue(&s, def) + ")"
		fs.Var(&overrideValue{cf: cf, name: s.flag, bool: s.kind == kindBool}, s.flag, usage)
		if s.flag == "log_level" {
			fs.Var(&overrideValue{cf: cf, name: s.flag}, "log-level", "same as --log_level")
		}
	}
	return cf
}

// overrideValue records a configuration flag; the loader parses it.
type overrideValue struct {
	cf   *configFlags
	name string
	bool bool
}

func (v *overrideValue) String() string   { return "" }
func (v *overrideValue) IsBoolFlag() bool { return v.bool }
func (v *overrideValue) Set(s string) error {
	v.cf.overrides = append(v.cf.overrides, FlagValue{Name: v.name, Value: s})
	return nil
}

// configPath is the path to load: the -config flag, or the default directory
// when it exists, or "" (defaults only) when it does not.
func (cf *configFlags) configPath() string {
	if cf.pathGiven {
		return cf.path
	}
	if _, err := os.Stat(cf.path); errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	return cf.path
}

// loadConfig loads the configuration the flags name. On errors it prints
// every diagnostic to Stderr and returns ok = false with ExitConfig.
func (e *Env) loadConfig(cf *configFlags) (c *Config, code int, ok bool) {
	l := Loader{Environ: e.environ(), Flags: cf.overrides}
	c, diags := l.Load(cf.configPath())
	if len(diags) > 0 {
		if err := c.WriteDiagnostics(e.Stderr, diags); err != nil {
			fmt.Fprintf(e.Stderr, "write diagnostics: %v\n", err)
		}
	}
	if diags.HasErrors() {
		return c, ExitConfig, false
	}
	return c, ExitOK, true
}

func (e *Env) environ() []string {
	if e.Environ == nil {
		return nil
	}
	return e.Environ()
}

// WriteDiagnostics prints diags as hcl does: severity, summary, file:line:col,
// the source lines with the range marked, and the detail.
func (c *Config) WriteDiagnostics(w io.Writer, diags hcl.Diagnostics) error {
	return hcl.NewDiagnosticTextWriter(w, c.files, 0, false).WriteDiagnostics(diags)
}
