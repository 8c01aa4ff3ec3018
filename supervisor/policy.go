package supervisor

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Policy holds the restart rules. [Policy.Decide] applies them; it is a pure
// function so the rules are tested as a table.
type Policy struct {
	// MinUptime is how long a child that never reported readiness must run
	// for its start to count as successful.
	MinUptime time.Duration
	// BackoffInitial is the first delay after a failed start.
	BackoffInitial time.Duration
	// BackoffMax caps the delay, jitter included.
	BackoffMax time.Duration
	// BackoffResetAfter is how long a successfully started child must run
	// for the backoff to start again from an immediate restart.
	BackoffResetAfter time.Duration
	// MaxRestarts is how many restarts RestartWindow may hold; one more and
	// the supervisor gives up. Zero means no limit.
	MaxRestarts int
	// RestartWindow is the sliding window MaxRestarts counts in.
	RestartWindow time.Duration
}

// DefaultPolicy returns the defaults documented in docs/contracts.md.
func DefaultPolicy() Policy {
	return Policy{
		MinUptime:         10 * time.Second,
		BackoffInitial:    100 * time.Millisecond,
		BackoffMax:        30 * time.Second,
		BackoffResetAfter: 60 * time.Second,
		MaxRestarts:       10,
		RestartWindow:     5 * time.Minute,
	}
}

// Validate reports every problem with p, joined.
func (p Policy) Validate() error {
	var errs []error
	if p.MinUptime < 0 {
		errs = append(errs, fmt.Errorf("min_uptime: %v is negative", p.MinUptime))
	}
	if p.BackoffInitial <= 0 {
		errs = append(errs, fmt.Errorf("backoff_initial: %v is not positive", p.BackoffInitial))
	}
	if p.BackoffMax < p.BackoffInitial {
		errs = append(errs, fmt.Errorf("backoff_max: %v is below backoff_initial %v", p.BackoffMax, p.BackoffInitial))
	}
	if p.BackoffResetAfter < 0 {
		errs = append(errs, fmt.Errorf("backoff_reset_after: %v is negative", p.BackoffResetAfter))
	}
	if p.MaxRestarts < 0 {
		errs = append(errs, fmt.Errorf("max_restarts: %d is negative", p.MaxRestarts))
	}
	if p.MaxRestarts > 0 && p.RestartWindow <= 0 {
		errs = append(errs, fmt.Errorf("restart_window: %v is not positive", p.RestartWindow))
	}
	return errors.Join(errs...)
}

// Outcome describes how one run of the child ended.
type Outcome struct {
	// Exit is the child's exit status.
	Exit Exit
	// Uptime is how long the child ran.
	Uptime time.Duration
	// Ready reports whether the child reported readiness.
	Ready bool
	// ReadyTimedOut reports that the supervisor killed the child because it
	// did not become ready in time; such a start never counts as successful.
	ReadyTimedOut bool
}

// History is what the policy remembers between runs. The zero value is the
// history of a supervisor that has not restarted anything yet.
type History struct {
	// Level counts the restarts since the backoff was last reset; it is the
	// exponent of the next delay.
	Level int
	// Restarts are the times of the restarts still inside the window,
	// oldest first.
	Restarts []time.Time
}

// Action is what the policy decided.
type Action int

const (
	// ActionStop means the child stopped on request (exit 0): stop too.
	ActionStop Action = iota + 1
	// ActionFatal means a permanent failure (exit 78): do not restart, exit 78.
	ActionFatal
	// ActionRestart means restart the child after Decision.Delay.
	ActionRestart
	// ActionGiveUp means the restart budget is spent: exit non-zero and let
	// systemd decide.
	ActionGiveUp
)

// String returns the action's name.
func (a Action) String() string {
	switch a {
	case ActionStop:
		return "stop"
	case ActionFatal:
		return "fatal"
	case ActionRestart:
		return "restart"
	case ActionGiveUp:
		return "give_up"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Decision is the policy's answer for one exit.
type Decision struct {
	// Action is what to do.
	Action Action
	// Delay is how long to wait before restarting (ActionRestart only).
	Delay time.Duration
	// History is the history to pass to the next call.
	History History
}

// Decide applies the restart rules to one exit of the child at time now:
//
//   - exit 0 stops, exit 78 is fatal, anything else (other codes, signals)
//     restarts;
//   - a start is successful once the child was ready, or ran MinUptime
//     without a ready timeout;
//   - a successful run that lasted BackoffResetAfter resets the backoff;
//   - the first restart after a successful run (with the backoff reset) is
//     immediate; every other restart waits BackoffInitial·2^Level with
//     ±25% jitter from rnd, capped at BackoffMax;
//   - if RestartWindow already holds MaxRestarts restarts, give up.
//
// Decide does not modify h; rnd may be nil, which means no jitter.
func (p Policy) Decide(now time.Time, o Outcome, h History, rnd *rand.Rand) Decision {
	if o.Exit.Signal == 0 && !o.Exit.StartFailed {
		switch o.Exit.Code {
		case ExitOK:
			return Decision{Action: ActionStop, History: h}
		case ExitConfig:
			return Decision{Action: ActionFatal, History: h}
		}
	}
	kept := make([]time.Time, 0, len(h.Restarts)+1)
	for _, t := range h.Restarts {
		if now.Sub(t) < p.RestartWindow {
			kept = append(kept, t)
		}
	}
	if p.MaxRestarts > 0 && len(kept) >= p.MaxRestarts {
		return Decision{Action: ActionGiveUp, History: History{Level: h.Level, Restarts: kept}}
	}
	started := !o.ReadyTimedOut && !o.Exit.StartFailed && (o.Ready || o.Uptime >= p.MinUptime)
	level := h.Level
	if started && o.Uptime >= p.BackoffResetAfter {
		level = 0
	}
	var delay time.Duration
	if !started || level > 0 {
		delay = p.backoff(level, rnd)
	}
	return Decision{
		Action:  ActionRestart,
		Delay:   delay,
		History: History{Level: level + 1, Restarts: append(kept, now)},
	}
}

// backoff returns BackoffInitial·2^level with ±25% jitter, capped at
// BackoffMax.
func (p Policy) backoff(level int, rnd *rand.Rand) time.Duration {
	d := p.BackoffInitial
	for i := 0; i < level && d < p.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, p.BackoffMax)
	if rnd != nil && d >= 4 {
		d = d - d/4 + time.Duration(rnd.Int64N(int64(d/2)))
	}
	return min(d, p.BackoffMax)
}
