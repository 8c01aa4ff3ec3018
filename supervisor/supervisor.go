package supervisor

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Supervisor keeps one child running: it starts it, watches its readiness,
// heartbeats and exit, applies the [Policy], relays state to systemd and
// runs the hooks. Build it with [New]; call [Supervisor.Run] once.
type Supervisor struct {
	cfg      Config
	log      hclog.Logger
	launcher Launcher
	sd       systemdEnv
	rnd      *rand.Rand
	runHook  hookFunc
	sdSend   func(state string) error

	// Owned by Run's goroutine.
	sigs             <-chan os.Signal
	tick             <-chan time.Time
	hooks            *hookSet
	hist             History
	failedSinceReady bool
	sdReady          bool // READY=1 was sent once

	mu         sync.Mutex
	status     Status
	statusLine string // last STATUS= sent
}

// New validates cfg and builds a supervisor. It starts nothing.
func New(cfg Config) (*Supervisor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("supervisor config: %w", err)
	}
	root := cfg.Logger
	if root == nil {
		root = hclog.NewNullLogger()
	}
	s := &Supervisor{
		cfg:     cfg,
		log:     root.Named("supervisor"),
		runHook: execHook,
		rnd:     cfg.Rand,
	}
	env := cfg.Env
	if env == nil {
		env = os.Environ()
	}
	sd, childEnv := parseSystemdEnv(env, os.Getpid())
	s.sd = sd
	s.sdSend = func(state string) error { return sdNotify(sd.socket, state) }
	if s.rnd == nil {
		s.rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	s.launcher = cfg.Launcher
	if s.launcher == nil {
		path := cfg.Path
		if path == "" {
			exe, err := os.Executable()
			if err != nil {
				return nil, fmt.Errorf("supervisor: find own binary: %w", err)
			}
			path = exe
		}
		s.launcher = &ExecLauncher{
			Path:              path,
			Args:              cfg.Args,
			Env:               childEnv,
			Dir:               cfg.Dir,
			HeartbeatInterval: cfg.WatchdogTimeout / 4,
			Logger:            root.Named("master"),
		}
	}
	s.status = Status{State: StateStarting, SupervisorPID: os.Getpid(), LastExitCode: -1}
	return s, nil
}

// Status returns a copy of the supervisor's current status. Safe for
// concurrent use.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.status
	st.LastOutput = append([]string(nil), st.LastOutput...)
	return st
}

// Run supervises the child until it stops on request (SIGTERM, SIGINT or ctx
// cancelled: returns nil), fails permanently (returns an error wrapping
// [ErrFatal]) or spends the restart budget (wraps [ErrGaveUp]); map the
// result with [ExitCode]. Run waits for the child to be reaped and for
// running hooks before it returns.
func (s *Supervisor) Run(ctx context.Context) error {
	s.sigs = s.cfg.Signals
	if s.sigs == nil {
		// signal.Notify never blocks, so it needs room for a burst.
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		defer signal.Stop(ch)
		s.sigs = ch
	}
	s.hooks = startHooks(ctx, &s.cfg, s.runHook, s.log.Named("hook"))
	defer s.hooks.close()
	if s.sd.watchdog > 0 {
		t := time.NewTicker(s.sd.watchdog / 2)
		defer t.Stop()
		s.tick = t.C
	}
	s.log.Info("supervisor started", "pid", os.Getpid(), "systemd_notify", s.sd.socket != "")

	restart := false
	for {
		if ctx.Err() != nil {
			s.finish(StateStopped)
			return nil
		}
		end := s.runChild(ctx, restart)
		restart = true
		switch end.why {
		case endStopped:
			s.recordExit(end, StateStopped, 0)
			return nil
		case endRestart:
			s.recordExit(end, StateStarting, 0)
			continue
		}

		s.failedSinceReady = true
		d := s.cfg.Policy.Decide(time.Now(), end.outcome, s.hist, s.rnd)
		s.hist = d.History
		switch d.Action {
		case ActionStop:
			s.recordExit(end, StateStopped, 0)
			s.hooks.emit(s.notice(EventExited, end, 0))
			s.log.Info("child exited on its own with code 0, stopping", "pid", end.pid)
			return nil
		case ActionFatal:
			s.recordExit(end, StateFatal, 0)
			s.hooks.emit(s.notice(EventExited, end, 0))
			s.log.Error("child failed permanently, not restarting", "pid", end.pid, "exit_code", end.outcome.Exit.Code, "reason", end.reason)
			s.hooks.emit(s.notice(EventFatal, end, 0))
			return fmt.Errorf("%w: %s", ErrFatal, reasonOr(end.reason, end.outcome.Exit.String()))
		case ActionGiveUp:
			s.recordExit(end, StateGaveUp, 0)
			s.hooks.emit(s.notice(EventExited, end, 0))
			s.log.Error("restart budget spent, giving up", "max_restarts", s.cfg.Policy.MaxRestarts, "restart_window", s.cfg.Policy.RestartWindow.String())
			s.hooks.emit(s.notice(EventGaveUp, end, 0))
			return fmt.Errorf("%w: %d restarts within %v, last: %s", ErrGaveUp,
				len(d.History.Restarts), s.cfg.Policy.RestartWindow, reasonOr(end.reason, end.outcome.Exit.String()))
		}
		if d.Delay == 0 {
			s.recordExit(end, StateStarting, 0)
			s.hooks.emit(s.notice(EventExited, end, 0))
			s.log.Info("restarting child", "backoff", d.Delay.String())
			continue
		}
		s.recordExit(end, StateBackoff, d.Delay)
		s.hooks.emit(s.notice(EventExited, end, 0))
		s.log.Info("restarting child", "backoff", d.Delay.String())
		s.hooks.emit(s.notice(EventBackoff, end, d.Delay))
		if stopped := s.backoff(ctx, d.Delay); stopped {
			s.finish(StateStopped)
			return nil
		}
	}
}

func reasonOr(reason, alt string) string {
	if reason != "" {
		return reason
	}
	return alt
}

// endWhy says why a child's run ended.
type endWhy int

const (
	endExited  endWhy = iota + 1 // on its own, or killed by the watchdog or ready timeout
	endStopped                   // stopped on request
	endRestart                   // stopped for a reload that needs a new child
)

// childEnd is how one run of the child ended.
type childEnd struct {
	why     endWhy
	pid     int
	outcome Outcome
	reason  string
	tail    []string
}

// runChild starts one child (a restart unless it is the first) and
// supervises it until it is reaped.
func (s *Supervisor) runChild(ctx context.Context, restart bool) childEnd {
	now := time.Now()
	s.update(func(st *Status) {
		if restart {
			st.Restarts++
		}
		st.State = StateStarting
		st.StartedAt, st.ReadyAt = now, time.Time{}
		st.NextStartAt, st.NextBackoff = time.Time{}, ""
		st.ChildStatus = ""
		st.ChildPID = 0
	})
	p, err := s.launcher.Start(ctx)
	if err != nil {
		s.log.Error("child start failed", "error", err)
		end := childEnd{
			why:     endExited,
			outcome: Outcome{Exit: Exit{Code: -1, StartFailed: true}},
			reason:  err.Error(),
		}
		return end
	}
	s.update(func(st *Status) { st.ChildPID = p.Pid() })
	s.log.Info("child started", "pid", p.Pid())
	return s.supervise(ctx, p, now)
}

// supervise handles one running child's messages, timers and the
// supervisor's signals until the child has been reaped.
func (s *Supervisor) supervise(ctx context.Context, p Process, start time.Time) childEnd {
	pid := p.Pid()
	var (
		ready         bool
		lastBeat      time.Time
		reason        string // the child's own
		supReason     string // the supervisor's, when it killed the child
		readyTimedOut bool
		stopping      bool
		why           = endExited
		readyC        <-chan time.Time
		watchdogC     <-chan time.Time
		stopC         <-chan time.Time
		done          = ctx.Done()
		notify        = p.Notify()
	)
	if s.cfg.ReadyTimeout > 0 {
		t := time.NewTimer(s.cfg.ReadyTimeout)
		defer t.Stop()
		readyC = t.C
	}
	watchdog := time.NewTimer(time.Hour)
	watchdog.Stop()
	defer watchdog.Stop()
	stopTimer := time.NewTimer(time.Hour)
	stopTimer.Stop()
	defer stopTimer.Stop()

	kill := func(why string) {
		if supReason == "" {
			supReason = why
		}
		s.log.Warn("killing child process group", "pid", pid, "reason", why)
		if err := p.Kill(); err != nil {
			s.log.Error("kill child", "pid", pid, "error", err)
		}
	}
	beginStop := func(w endWhy) {
		if stopping {
			return
		}
		stopping, why = true, w
		readyC, watchdogC = nil, nil
		s.update(func(st *Status) { st.State = StateStopping })
		if w == endStopped {
			s.notifySD("STOPPING=1")
		}
		s.log.Info("stopping child", "pid", pid, "stop_timeout", s.cfg.StopTimeout.String())
		if err := p.Signal(syscall.SIGTERM); err != nil {
			s.log.Warn("signal child", "pid", pid, "error", err)
		}
		stopTimer.Reset(s.cfg.StopTimeout)
		stopC = stopTimer.C
	}
	fresh := func() bool {
		if !ready || stopping || s.cfg.WatchdogTimeout == 0 {
			return true
		}
		return time.Since(lastBeat) < s.cfg.WatchdogTimeout
	}

	for {
		select {
		case m, ok := <-notify:
			if !ok {
				notify = nil
				continue
			}
			switch m.Kind {
			case MessageReady:
				if ready || stopping {
					continue
				}
				ready, lastBeat = true, time.Now()
				readyC = nil
				if s.cfg.WatchdogTimeout > 0 {
					watchdog.Reset(s.cfg.WatchdogTimeout)
					watchdogC = watchdog.C
				}
				s.update(func(st *Status) { st.State, st.ReadyAt = StateRunning, lastBeat })
				s.log.Info("child ready", "pid", pid, "startup", time.Since(start).String())
				s.notifySD("READY=1")
				s.sdReady = true
				if s.failedSinceReady {
					s.failedSinceReady = false
					s.hooks.emit(s.notice(EventRecovered, childEnd{pid: pid}, 0))
				}
			case MessageHeartbeat:
				lastBeat = time.Now()
				if watchdogC != nil {
					watchdog.Reset(s.cfg.WatchdogTimeout)
				}
			case MessageReason:
				reason = m.Text
				s.log.Debug("child exit reason", "pid", pid, "reason", reason)
			case MessageStatus:
				s.update(func(st *Status) { st.ChildStatus = m.Text })
			}
		case <-p.Done():
			end := childEnd{
				why: why,
				pid: pid,
				outcome: Outcome{
					Exit:          p.Exit(),
					Uptime:        time.Since(start),
					Ready:         ready,
					ReadyTimedOut: readyTimedOut,
				},
				reason: reasonOr(supReason, reason),
				tail:   p.Tail(),
			}
			if why == endStopped && reason != "" {
				end.reason = reason
			}
			return end
		case <-readyC:
			readyC = nil
			readyTimedOut = true
			kill(fmt.Sprintf("not ready within %v", s.cfg.ReadyTimeout))
		case <-watchdogC:
			watchdogC = nil
			kill(fmt.Sprintf("no heartbeat for %v", s.cfg.WatchdogTimeout))
		case <-s.tick:
			if fresh() {
				s.notifySD("WATCHDOG=1")
			}
		case sig := <-s.sigs:
			switch {
			case sig == syscall.SIGHUP && stopping:
				s.log.Info("reload ignored while stopping")
			case sig == syscall.SIGHUP:
				if s.reload(ctx, p) == ReloadRestart {
					beginStop(endRestart)
				}
			case stopping:
				s.log.Info("stop already in progress", "signal", sig.String(), "stop_timeout", s.cfg.StopTimeout.String())
			default:
				s.log.Info("stop requested", "signal", sig.String())
				beginStop(endStopped)
			}
		case <-done:
			done = nil
			if stopping {
				why = endStopped
				continue
			}
			beginStop(endStopped)
		case <-stopC:
			stopC = nil
			kill(fmt.Sprintf("did not stop within %v", s.cfg.StopTimeout))
		}
	}
}

// backoff waits d before the next start, handling signals; it reports
// whether a stop was requested meanwhile.
func (s *Supervisor) backoff(ctx context.Context, d time.Duration) (stopped bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return false
		case <-ctx.Done():
			return true
		case <-s.tick:
			// No child to vouch for: the supervisor's own loop is alive.
			s.notifySD("WATCHDOG=1")
		case sig := <-s.sigs:
			if sig == syscall.SIGHUP {
				// The next child reads the new configuration anyway.
				s.reload(ctx, nil)
				continue
			}
			s.log.Info("stop requested during backoff", "signal", sig.String())
			return true
		}
	}
}

// reload validates the configuration through Config.Reload and, if it is
// valid, forwards SIGHUP to p (if any) or reports that p must be restarted.
// It returns the action taken, or 0 if the configuration was invalid.
func (s *Supervisor) reload(ctx context.Context, p Process) ReloadAction {
	if s.sdReady {
		// systemd (Type=notify-reload) waits for RELOADING=1, then READY=1.
		s.notifySD(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUSec()))
		defer s.notifySD("READY=1")
	}
	action := ReloadForward
	if s.cfg.Reload != nil {
		var err error
		action, err = s.cfg.Reload(ctx)
		if err != nil {
			s.log.Error("reload failed, keeping the running configuration", "error", err)
			s.update(func(st *Status) { st.ReloadError = err.Error() })
			return 0
		}
	}
	s.update(func(st *Status) { st.ReloadError = "" })
	switch {
	case p == nil:
		s.log.Info("configuration reloaded; the next child uses it")
	case action == ReloadRestart:
		s.log.Info("configuration reloaded; a value the child cannot reload changed, restarting it", "pid", p.Pid())
	default:
		s.log.Info("configuration reloaded, forwarding SIGHUP", "pid", p.Pid())
		if err := p.Signal(syscall.SIGHUP); err != nil {
			s.log.Warn("signal child", "pid", p.Pid(), "error", err)
		}
		action = ReloadForward
	}
	return action
}

// recordExit puts a child's end into the status, with the state the
// supervisor moves to and, for backoff, the delay.
func (s *Supervisor) recordExit(end childEnd, next State, backoff time.Duration) {
	e := end.outcome.Exit
	lvl := hclog.Warn
	if end.why != endExited {
		lvl = hclog.Info
	}
	s.log.Log(lvl, "child exited", "pid", end.pid, "exit_code", e.Code, "exit", e.String(),
		"reason", end.reason, "uptime", end.outcome.Uptime.String())
	s.update(func(st *Status) {
		st.LastExit = e.String()
		st.LastExitCode = e.Code
		st.LastSignal = ""
		if e.Signal != 0 {
			st.LastSignal = signalName(e.Signal)
		}
		st.LastReason = end.reason
		st.LastExitAt = time.Now()
		st.LastOutput = end.tail
		st.ReadyAt = time.Time{}
		st.State = next
		if next == StateStarting {
			st.ChildPID = 0
		}
		if next == StateBackoff {
			st.NextStartAt, st.NextBackoff = time.Now().Add(backoff), backoff.String()
		}
	})
}

// finish records the supervisor's final state.
func (s *Supervisor) finish(state State) {
	s.update(func(st *Status) { st.State = state })
}

// notice builds the hook input for ev.
func (s *Supervisor) notice(ev Event, end childEnd, backoff time.Duration) Notice {
	st := s.Status()
	n := Notice{
		Event:    ev,
		Exit:     end.outcome.Exit,
		Restarts: st.Restarts,
		Reason:   end.reason,
		Pid:      end.pid,
		Backoff:  backoff,
		Tail:     end.tail,
	}
	if ev == EventRecovered {
		n.Exit = Exit{}
		n.Reason = st.LastReason
	}
	return n
}

// update changes the status, writes the state file and sends STATUS= when
// the summary line changed.
func (s *Supervisor) update(f func(*Status)) {
	s.mu.Lock()
	f(&s.status)
	s.status.UpdatedAt = time.Now()
	st := s.status
	line := st.Line()
	changed := line != s.statusLine
	s.statusLine = line
	s.mu.Unlock()
	if s.cfg.StatePath != "" {
		if err := WriteStatus(s.cfg.StatePath, &st); err != nil {
			s.log.Warn("write state file", "error", err)
		}
	}
	if changed {
		s.notifySD("STATUS=" + line)
	}
}

// notifySD sends state to systemd; failures are logged, never fatal.
func (s *Supervisor) notifySD(state string) {
	if err := s.sdSend(state); err != nil {
		s.log.Debug("sd_notify", "error", err)
	}
}
