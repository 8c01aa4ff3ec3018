package appliance

import "context"

// cmdConfigValidate runs "regent config validate".
func cmdConfigValidate(_ context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	return e.notImplemented()
}

// cmdConfigShow runs "regent config show".
func cmdConfigShow(_ context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	return e.notImplemented()
}
