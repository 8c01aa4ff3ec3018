package appliance

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/hashicorp/go-hclog"
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
			fs.Var(&overrideValue{cf: cf, name: s.flag}, "log-level", "log `level`, same as --log_level")
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

// configCommand parses the arguments of a command that takes only the
// configuration flags (-config and the Mesos-style overrides) and loads the
// configuration. ok = false means the command must return code at once
// (help printed, a usage error, or configuration diagnostics).
func (e *Env) configCommand(args []string) (c *Config, cf *configFlags, code int, ok bool) {
	fs := e.flagSet()
	cf = addConfigFlags(fs)
	if code, ok := e.parseFlags(fs, args); !ok {
		return nil, cf, code, false
	}
	if code, ok := e.noArgs(fs); !ok {
		return nil, cf, code, false
	}
	c, code, ok = e.loadConfig(cf)
	return c, cf, code, ok
}

func (e *Env) environ() []string {
	if e.Environ == nil {
		return nil
	}
	return e.Environ()
}

// WriteDiagnostics prints diags for a person: for each, a first line
// "FILE:LINE:COLUMN: error: SUMMARY" that editors and grep understand, then
// hcl's text rendering (severity, summary, the source lines, the detail).
func (c *Config) WriteDiagnostics(w io.Writer, diags hcl.Diagnostics) error {
	tw := hcl.NewDiagnosticTextWriter(w, c.files, 0, false)
	for _, d := range diags {
		if d.Subject != nil {
			sev := "error"
			if d.Severity == hcl.DiagWarning {
				sev = "warning"
			}
			if _, err := fmt.Fprintf(w, "%s:%d:%d: %s: %s\n", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, sev, d.Summary); err != nil {
				return err
			}
		}
		if err := tw.WriteDiagnostic(d); err != nil {
			return err
		}
	}
	return nil
}

// LogDiagnostics logs each of diags as one record, for JSON logs (a reload
// that failed): severity as the level, the summary as the message, and the
// location and detail as fields.
func LogDiagnostics(logger hclog.Logger, diags hcl.Diagnostics) {
	for _, d := range diags {
		args := []any{"detail", d.Detail}
		if d.Subject != nil {
			args = append(args, "file", d.Subject.Filename, "line", d.Subject.Start.Line, "column", d.Subject.Start.Column)
		}
		if d.Severity == hcl.DiagWarning {
			logger.Warn("config: "+d.Summary, args...)
		} else {
			logger.Error("config: "+d.Summary, args...)
		}
	}
}
