package appliance

import (
	"context"
	"fmt"
)

// cmdConfigValidate runs "regent config validate": it loads the
// configuration as run and master would, prints every problem and exits
// ExitOK or ExitConfig.
func cmdConfigValidate(_ context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	cf := addConfigFlags(fs)
	quiet := fs.Bool("q", false, "print nothing when the configuration is valid")
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	if code, ok := e.noArgs(fs); !ok {
		return code
	}
	c, code, ok := e.loadConfig(cf)
	if !ok {
		return code
	}
	if !*quiet {
		what := "defaults only (no configuration files)"
		if len(c.Files) > 0 {
			what = fmt.Sprintf("%d file(s) from %s", len(c.Files), cf.configPath())
		}
		fmt.Fprintf(e.Stdout, "configuration valid: %s\n", what)
	}
	return ExitOK
}

// cmdConfigShow runs "regent config show": it prints the effective
// configuration with the source of every value.
func cmdConfigShow(_ context.Context, e *Env, args []string) int {
	c, _, code, ok := e.configCommand(args)
	if !ok {
		return code
	}
	if err := c.Show(e.Stdout); err != nil {
		fmt.Fprintf(e.Stderr, "regent config show: %v\n", err)
		return ExitFailure
	}
	return ExitOK
}
