package appliance

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// FlagValue is one configuration flag from the command line, e.g.
// {Name: "quorum", Value: "2"} for --quorum=2. Name is a Mesos-style flag
// name (see [ConfigFlagNames]); Value is the text given, parsed by the loader
// so that a bad value is reported with every other problem.
type FlagValue struct {
	Name  string
	Value string
}

// Loader loads regent's configuration. The zero value reads no environment
// and applies no flags.
type Loader struct {
	// Environ is the environment as "NAME=value" pairs; expressions see it
	// as env.NAME.
	Environ []string
	// Flags override the files, in order (a later flag wins).
	Flags []FlagValue
}

// LoadConfig loads the configuration at path (a file, or a directory of
// *.hcl files merged in lexical order; "" for defaults only) with the
// process's environment, then applies flags. It returns every problem found
// as a diagnostic. The Config is never nil, but must not be used when the
// diagnostics have errors.
//
// The supervisor calls it again on SIGHUP: on errors it keeps the running
// configuration and reports the diagnostics.
func LoadConfig(path string, flags ...FlagValue) (*Config, hcl.Diagnostics) {
	l := Loader{Environ: os.Environ(), Flags: flags}
	return l.Load(path)
}

// Load loads the configuration at path: defaults, then each file in order (a
// value set in a later file replaces the earlier one; notify blocks are
// replaced by name), then l.Flags; then it checks the result. Every problem
// is a diagnostic; the Config is never nil.
func (l *Loader) Load(path string) (*Config, hcl.Diagnostics) {
	c := DefaultConfig()
	c.Sources = map[string]Source{}
	for _, s := range settings {
		c.Sources[s.name] = Source{}
	}
	parser := hclparse.NewParser()

	files, diags := configFiles(path)
	ctx := l.evalContext()
	for _, name := range files {
		f, d := parser.ParseHCLFile(name)
		diags = append(diags, d...)
		if f == nil {
			continue
		}
		c.Files = append(c.Files, name)
		if d.HasErrors() {
			continue // decoding a broken file only adds noise to its syntax errors
		}
		var fc fileConfig
		diags = append(diags, gohcl.DecodeBody(f.Body, ctx, &fc)...)
		diags = append(diags, c.apply(name, &fc, ctx)...)
	}
	diags = append(diags, c.applyFlags(l.Flags)...)
	c.files = parser.Files()
	diags = append(diags, c.check()...)
	sortDiagnostics(diags, c.Files)
	return c, diags
}

// sortDiagnostics orders diags as a reader meets the problems: by file in
// merge order, then by position; those without a place in a file (flags,
// defaults, unreadable paths) keep their order at the end.
func sortDiagnostics(diags hcl.Diagnostics, files []string) {
	rank := func(d *hcl.Diagnostic) (int, int) {
		if d.Subject == nil {
			return len(files) + 1, 0
		}
		i := slices.Index(files, d.Subject.Filename)
		if i < 0 {
			i = len(files)
		}
		return i, d.Subject.Start.Byte
	}
	slices.SortStableFunc(diags, func(a, b *hcl.Diagnostic) int {
		fa, pa := rank(a)
		fb, pb := rank(b)
		if fa != fb {
			return fa - fb
		}
		return pa - pb
	})
}

// configFiles lists the files to read at path, in merge order.
func configFiles(path string) ([]string, hcl.Diagnostics) {
	if path == "" {
		return nil, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Configuration not found",
			Detail:   fmt.Sprintf("Cannot read the configuration: %v.", err),
		}}
	}
	if !fi.IsDir() {
		return []string{path}, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  "Configuration directory unreadable",
			Detail:   fmt.Sprintf("Cannot list the configuration directory: %v.", err),
		}}
	}
	var files []string
	for _, e := range entries {
		if e.IsDir() || !isConfigFileName(e.Name()) {
			continue
		}
		files = append(files, filepath.Join(path, e.Name()))
	}
	slices.Sort(files) // ReadDir sorts already; the merge order is the contract
	return files, nil
}

// isConfigFileName reports whether a directory entry is a configuration
// file: *.hcl, and not an editor's or package manager's leftover (hidden
// files and Emacs lock files such as ".#x.hcl", "#x.hcl#", "x.hcl~",
// "x.hcl.bak", "x.hcl.swp", "x.hcl.dpkg-old" all fail the *.hcl test or start
// with "." or "#").
func isConfigFileName(name string) bool {
	return strings.HasSuffix(name, ".hcl") &&
		!strings.HasPrefix(name, ".") && !strings.HasPrefix(name, "#")
}

// evalContext is what expressions in the files can use: env.NAME and a few
// pure functions (try, can, lookup, format, join, split, lower, upper,
// trimspace). There is no access to files or the network.
func (l *Loader) evalContext() *hcl.EvalContext {
	env := map[string]cty.Value{}
	for _, kv := range l.Environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && k != "" && hclIdent(k) {
			env[k] = cty.StringVal(v)
		}
	}
	return &hcl.EvalContext{
		Variables: map[string]cty.Value{"env": cty.ObjectVal(env)},
		Functions: map[string]function.Function{
			"try":       tryfunc.TryFunc,
			"can":       tryfunc.CanFunc,
			"lookup":    stdlib.LookupFunc,
			"format":    stdlib.FormatFunc,
			"join":      stdlib.JoinFunc,
			"split":     stdlib.SplitFunc,
			"lower":     stdlib.LowerFunc,
			"upper":     stdlib.UpperFunc,
			"trimspace": stdlib.TrimSpaceFunc,
		},
	}
}

// hclIdent reports whether s can be written after "env.".
func hclIdent(s string) bool {
	for i, r := range s {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r == '-' || r >= '0' && r <= '9'):
		default:
			return false
		}
	}
	return s != ""
}

// apply merges one decoded file into c.
func (c *Config) apply(file string, fc *fileConfig, ctx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, s := range settings {
		attr := s.attr(fc)
		if attr == nil {
			continue
		}
		if d := decodeSetting(&s, attr.Expr, ctx, s.field(c)); d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		c.Sources[s.name] = Source{File: file, Range: attr.Expr.Range(), expr: attr.Expr}
	}
	if fc.Supervisor == nil {
		return diags
	}
	seen := map[string]hcl.Range{}
	for _, n := range fc.Supervisor.Notify {
		if first, dup := seen[n.Name]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate notify block",
				Detail:   fmt.Sprintf("A notify block named %q was already defined at %s:%d. Each hook needs its own name.", n.Name, first.Filename, first.Start.Line),
				Subject:  n.LabelRange.Ptr(),
			})
			continue
		}
		seen[n.Name] = n.DefRange
		if n.Exec == nil {
			// gohcl treats pointer fields as optional; exec is required.
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing required argument",
				Detail:   fmt.Sprintf("notify %q needs exec: the command to run, e.g. [\"/usr/local/bin/page\", \"regent\"].", n.Name),
				Subject:  n.DefRange.Ptr(),
			})
			continue
		}
		nc := NotifyConfig{Name: n.Name}
		d := decodeSetting(&setting{kind: kindStrings}, n.Exec.Expr, ctx, &nc.Exec)
		diags = append(diags, d...)
		if n.Events != nil {
			diags = append(diags, decodeSetting(&setting{kind: kindStrings}, n.Events.Expr, ctx, &nc.Events)...)
		}
		c.setNotify(nc, Source{File: file, Range: n.DefRange})
		c.Sources[notifySetting(n.Name)+".exec"] = Source{File: file, Range: n.Exec.Expr.Range(), expr: n.Exec.Expr}
		if n.Events != nil {
			c.Sources[notifySetting(n.Name)+".events"] = Source{File: file, Range: n.Events.Expr.Range(), expr: n.Events.Expr}
		} else {
			delete(c.Sources, notifySetting(n.Name)+".events")
		}
	}
	return diags
}

func notifySetting(name string) string { return "supervisor.notify." + name }

// setNotify adds nc, or replaces the hook of the same name where it stands.
func (c *Config) setNotify(nc NotifyConfig, src Source) {
	c.Sources[notifySetting(nc.Name)] = src
	for i := range c.Supervisor.Notify {
		if c.Supervisor.Notify[i].Name == nc.Name {
			c.Supervisor.Notify[i] = nc
			return
		}
	}
	c.Supervisor.Notify = append(c.Supervisor.Notify, nc)
}

// decodeSetting decodes expr into dst (a pointer to the setting's field).
// dst is left alone when the value is unsuitable.
func decodeSetting(s *setting, expr hcl.Expression, ctx *hcl.EvalContext, dst any) hcl.Diagnostics {
	if s.kind == kindDuration {
		var text string
		if d := decodeInto(expr, ctx, &text); d.HasErrors() {
			return d
		}
		v, err := time.ParseDuration(text)
		if err != nil {
			return hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  "Invalid duration",
				Detail:   fmt.Sprintf("%q is not a duration: write a number and a unit, such as \"30s\", \"5m\" or \"100ms\".", text),
				Subject:  expr.Range().Ptr(),
			}}
		}
		*dst.(*time.Duration) = v
		return nil
	}
	switch d := dst.(type) {
	case *string:
		return decodeInto(expr, ctx, d)
	case *bool:
		return decodeInto(expr, ctx, d)
	case *int:
		return decodeInto(expr, ctx, d)
	case *[]string:
		return decodeInto(expr, ctx, d)
	}
	panic(fmt.Sprintf("appliance: setting %s has no decoder for %T", s.name, dst))
}

// decodeInto decodes expr into *dst, leaving it alone on error. It
// evaluates first so that an evaluation error (a missing env.NAME) is
// reported alone, not followed by a conversion error about the unknown
// result.
func decodeInto[T any](expr hcl.Expression, ctx *hcl.EvalContext, dst *T) hcl.Diagnostics {
	val, diags := expr.Value(ctx)
	if diags.HasErrors() {
		return diags
	}
	var v T
	if d := gohcl.DecodeExpression(hcl.StaticExpr(val, expr.Range()), nil, &v); d.HasErrors() {
		return append(diags, d...)
	}
	*dst = v
	return diags
}

// applyFlags applies command-line overrides; later ones win.
func (c *Config) applyFlags(flags []FlagValue) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, f := range flags {
		s := settingByFlag(canonicalFlag(f.Name))
		if s == nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Unknown configuration flag",
				Detail:   fmt.Sprintf("There is no configuration flag --%s.", f.Name),
			})
			continue
		}
		if err := setFromText(s, f.Value, s.field(c)); err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid value for flag --" + s.flag,
				Detail:   fmt.Sprintf("%q: %v.", f.Value, err),
			})
			continue
		}
		c.Sources[s.name] = Source{Flag: s.flag}
	}
	return diags
}

// canonicalFlag maps the dashed spelling of a flag (log-level) to the
// Mesos-style one (log_level).
func canonicalFlag(name string) string {
	return strings.ReplaceAll(name, "-", "_")
}

// setFromText parses a flag's text into dst.
func setFromText(s *setting, text string, dst any) error {
	switch s.kind {
	case kindString:
		*dst.(*string) = text
	case kindBool:
		v, err := strconv.ParseBool(text)
		if err != nil {
			return fmt.Errorf("want true or false")
		}
		*dst.(*bool) = v
	case kindInt:
		v, err := strconv.Atoi(text)
		if err != nil {
			return fmt.Errorf("want a whole number")
		}
		*dst.(*int) = v
	case kindDuration:
		v, err := time.ParseDuration(text)
		if err != nil {
			return fmt.Errorf("want a duration such as 30s, 5m or 100ms")
		}
		*dst.(*time.Duration) = v
	case kindStrings:
		var v []string
		for _, part := range strings.Split(text, ",") {
			if part = strings.TrimSpace(part); part != "" {
				v = append(v, part)
			}
		}
		*dst.(*[]string) = v
	}
	return nil
}
