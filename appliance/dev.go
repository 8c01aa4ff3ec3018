package appliance

import "context"

// cmdDev runs "regent dev". Placeholder until the master wiring lands.
func cmdDev(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	return e.notImplemented()
}
