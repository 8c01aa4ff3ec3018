package appliance

import "context"

// cmdLogBench runs "regent log bench". Placeholder until the log wiring lands.
func cmdLogBench(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	return e.notImplemented()
}

// cmdLogInspect runs "regent log inspect". Placeholder until the log wiring lands.
func cmdLogInspect(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	return e.notImplemented()
}

// cmdLogInitialize runs "regent log initialize". Placeholder until the log wiring lands.
func cmdLogInitialize(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	return e.notImplemented()
}
