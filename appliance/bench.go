package appliance

import "context"

// cmdBench runs "regent bench". Placeholder until the master wiring lands.
func cmdBench(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	return e.notImplemented()
}
