package appliance

import "context"

// cmdMaster runs the hidden "regent master". Placeholder until the master wiring lands.
func cmdMaster(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	return e.notImplemented()
}
