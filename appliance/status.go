package appliance

import "context"

// cmdStatus runs "regent status". Placeholder until the supervisor wiring lands.
func cmdStatus(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	return e.notImplemented()
}
