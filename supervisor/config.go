package supervisor

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Config configures a [Supervisor]. Build it with [DefaultConfig] and change
// what differs; the appliance converts the HCL `supervisor { }` block into it.
type Config struct {
	// Path is the child's executable; empty means the running binary
	// (os.Executable), which is how `regent run` re-executes itself.
	Path string
	// Args are the child's arguments after argv[0], e.g.
	// ["master", "-config", "/etc/regent.d"].
	Args []string
	// Env is the environment the supervisor reads systemd's variables from
	// (NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID) and hands to the child
	// without them. Nil means os.Environ().
	Env []string
	// Dir is the child's working directory; empty means the supervisor's.
	Dir string

	// Policy decides whether and when the child is restarted.
	Policy Policy
	// StopTimeout is how long a stopping child gets between SIGTERM and
	// SIGKILL to its process group. Keep it below systemd's TimeoutStopSec.
	StopTimeout time.Duration
	// WatchdogTimeout is how long a ready child may go without a heartbeat
	// before it is killed and restarted. Zero disables the check.
	WatchdogTimeout time.Duration
	// ReadyTimeout is how long a starting child may take to report
	// readiness before it is killed and restarted. Zero disables the check.
	ReadyTimeout time.Duration

	// Hooks are the notification hooks run on supervision events.
	Hooks []Hook
	// HookTimeout bounds one run of a hook; the hook's process group is
	// killed when it expires.
	HookTimeout time.Duration
	// HookBurst is how many runs one hook may start within HookInterval;
	// further events are dropped (and counted in the next run's
	// REGENT_SUPPRESSED), except fatal and gave_up, which always run.
	HookBurst int
	// HookInterval is the window of HookBurst.
	HookInterval time.Duration

	// StatePath is where the supervisor keeps its [Status] as JSON (mode
	// 0600, replaced atomically) for `regent status`; empty disables it.
	StatePath string

	// Logger receives the supervisor's own logs; the child's output is
	// re-emitted under Logger.Named("master"). Nil discards everything.
	Logger hclog.Logger

	// Reload is called on SIGHUP. It re-reads and validates the
	// configuration and says whether the child can reload in place
	// ([ReloadForward]: it gets SIGHUP) or must be restarted
	// ([ReloadRestart]: a value it cannot reload changed). An error means
	// the new configuration is invalid: the supervisor keeps running with
	// the old one, logs the error and reports it in STATUS=. Nil means
	// SIGHUP is always forwarded.
	Reload func(ctx context.Context) (ReloadAction, error)

	// Signals delivers SIGTERM, SIGINT and SIGHUP. Nil means Run subscribes
	// to them itself with signal.Notify for its lifetime. Tests inject a
	// channel.
	Signals <-chan os.Signal

	// Launcher starts the child; nil means an exec launcher built from
	// Path, Args, Env and Dir. Tests inject a fake.
	Launcher Launcher

	// Rand is the jitter source for the backoff; nil means a randomly seeded
	// one. Tests inject a seeded one.
	Rand *rand.Rand
}

// ReloadAction is what a valid reload asks of the child.
type ReloadAction int

const (
	// ReloadForward sends SIGHUP to the child, which re-reads its
	// configuration in place.
	ReloadForward ReloadAction = iota + 1
	// ReloadRestart stops the child gracefully and starts a new one at once,
	// because a value it cannot reload changed. The restart is not counted
	// against the restart budget.
	ReloadRestart
)

// String returns the action's name.
func (a ReloadAction) String() string {
	switch a {
	case ReloadForward:
		return "forward"
	case ReloadRestart:
		return "restart"
	}
	return fmt.Sprintf("ReloadAction(%d)", int(a))
}

// Hook is a notification hook: a command run on chosen supervision events.
// It gets REGENT_EVENT, REGENT_EXIT_CODE, REGENT_SIGNAL, REGENT_RESTARTS,
// REGENT_REASON, REGENT_PID, REGENT_BACKOFF and REGENT_SUPPRESSED in its
// environment and the child's last output lines on stdin.
type Hook struct {
	// Name identifies the hook in logs.
	Name string
	// Exec is the command and its arguments; no shell is involved.
	Exec []string
	// Events are the events the hook runs on; empty means all of them.
	Events []Event
}

// DefaultConfig returns the defaults documented in docs/contracts.md.
func DefaultConfig() Config {
	return Config{
		Policy:          DefaultPolicy(),
		StopTimeout:     30 * time.Second,
		WatchdogTimeout: 30 * time.Second,
		ReadyTimeout:    120 * time.Second,
		HookTimeout:     10 * time.Second,
		HookBurst:       5,
		HookInterval:    time.Minute,
	}
}

// Validate reports every problem with c, joined.
func (c *Config) Validate() error {
	var errs []error
	if err := c.Policy.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
		min  time.Duration
	}{
		{"stop_timeout", c.StopTimeout, time.Millisecond},
		{"watchdog_timeout", c.WatchdogTimeout, 0},
		{"ready_timeout", c.ReadyTimeout, 0},
		{"hook_timeout", c.HookTimeout, time.Millisecond},
		{"hook_interval", c.HookInterval, 0},
	} {
		if d.v < d.min {
			errs = append(errs, fmt.Errorf("%s: %v is below %v", d.name, d.v, d.min))
		}
	}
	if c.HookBurst < 1 {
		errs = append(errs, fmt.Errorf("hook_burst: %d is below 1", c.HookBurst))
	}
	names := make(map[string]bool)
	for i, h := range c.Hooks {
		if h.Name == "" {
			errs = append(errs, fmt.Errorf("notify %d: empty name", i))
		}
		if names[h.Name] {
			errs = append(errs, fmt.Errorf("notify %q: duplicate name", h.Name))
		}
		names[h.Name] = true
		if len(h.Exec) == 0 || h.Exec[0] == "" {
			errs = append(errs, fmt.Errorf("notify %q: exec: empty command", h.Name))
		}
		for _, e := range h.Events {
			if e < EventExited || e > EventRecovered {
				errs = append(errs, fmt.Errorf("notify %q: events: unknown event %d", h.Name, int(e)))
			}
		}
	}
	return errors.Join(errs...)
}
