package appliance

import "context"

// cmdRun runs "regent run": the supervisor of one master. Placeholder until the supervisor wiring lands.
func cmdRun(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	return e.notImplemented()
}
