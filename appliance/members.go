package appliance

import "context"

// cmdMembersList runs "regent members list". Placeholder until the log wiring lands.
func cmdMembersList(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	return e.notImplemented()
}

// cmdMembersAdd runs "regent members add". Placeholder until the log wiring lands.
func cmdMembersAdd(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	return e.notImplemented()
}

// cmdMembersRemove runs "regent members remove". Placeholder until the log wiring lands.
func cmdMembersRemove(ctx context.Context, e *Env, args []string) int {
	fs := e.flagSet()
	if code, ok := e.parseFlags(fs, args); !ok {
		return code
	}
	return e.notImplemented()
}
