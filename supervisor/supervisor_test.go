package supervisor

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
)

// harness runs a Supervisor over a fakeLauncher inside a synctest bubble,
// recording what it tells systemd and the hooks.
type harness struct {
	t    *testing.T
	l    *fakeLauncher
	s    *Supervisor
	sigs chan os.Signal

	mu      sync.Mutex
	sd      []sdRecord
	notices []Notice
}

type sdRecord struct {
	at    time.Time
	state string
}

func newHarness(t *testing.T, behave func(i int, p *fakeProc), edit func(*Config)) *harness {
	t.Helper()
	h := &harness{t: t, l: &fakeLauncher{behave: behave}, sigs: make(chan os.Signal, 1)}
	cfg := DefaultConfig()
	cfg.Launcher = h.l
	cfg.Signals = h.sigs
	cfg.Rand = rand.New(rand.NewPCG(7, 7))
	cfg.Env = []string{"NOTIFY_SOCKET=@fake"}
	cfg.Hooks = []Hook{{Name: "recorder", Exec: []string{"/bin/true"}}}
	cfg.HookBurst = 1000
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: tWriter{t}, Level: hclog.Debug})
	if edit != nil {
		edit(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	s.sdSend = func(state string) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.sd = append(h.sd, sdRecord{time.Now(), state})
		return nil
	}
	s.runHook = func(_ context.Context, _ Hook, n Notice) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.notices = append(h.notices, n)
		return nil
	}
	h.s = s
	return h
}

// start runs the supervisor on its own goroutine; the returned channel
// delivers Run's result.
func (h *harness) start(ctx context.Context) <-chan error {
	res := make(chan error, 1)
	go func() { res <- h.s.Run(ctx) }()
	return res
}

func (h *harness) events() []Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	var es []Event
	for _, n := range h.notices {
		es = append(es, n.Event)
	}
	return es
}

func (h *harness) noticesCopy() []Notice {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Notice(nil), h.notices...)
}

// sdStates returns the sd_notify datagrams sent, optionally only those
// starting with prefix.
func (h *harness) sdStates(prefix string) []sdRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []sdRecord
	for _, r := range h.sd {
		if strings.HasPrefix(r.state, prefix) {
			out = append(out, r)
		}
	}
	return out
}

// waitResult waits (in virtual time) for Run to return.
func waitResult(t *testing.T, res <-chan error) error {
	t.Helper()
	select {
	case err := <-res:
		return err
	case <-time.After(24 * time.Hour):
		t.Fatal("Run did not return")
		return nil
	}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestRestartAfterCrash(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(i int, p *fakeProc) {
			p.ready()
			if i == 0 {
				p.sleep(5 * time.Second)
				p.reason("lost leadership")
				p.exitCode(1)
				return
			}
			p.serve()
		}, nil)
		ctx, cancel := context.WithCancel(t.Context())
		res := h.start(ctx)
		time.Sleep(10 * time.Second)
		synctest.Wait()

		procs := h.l.started()
		if len(procs) != 2 {
			t.Fatalf("started %d children, want 2", len(procs))
		}
		if gap := procs[1].started.Sub(procs[0].endTime()); gap != 0 {
			t.Errorf("restart after a ready run took %v, want immediate", gap)
		}
		st := h.s.Status()
		if st.State != StateRunning || st.Restarts != 1 || st.ChildPID != procs[1].pid ||
			st.LastReason != "lost leadership" || st.LastExitCode != 1 {
			t.Errorf("status = %+v, want running, 1 restart, pid %d, reason lost leadership, code 1", st, procs[1].pid)
		}
		cancel()
		if err := waitResult(t, res); err != nil {
			t.Fatalf("Run = %v, want nil after stop", err)
		}
		if got, want := procs[1].signals(), []syscall.Signal{syscall.SIGTERM}; !cmp.Equal(got, want) {
			t.Errorf("second child got signals %v, want %v", got, want)
		}
		if diff := cmp.Diff([]Event{EventExited, EventRecovered}, h.events()); diff != "" {
			t.Errorf("hook events (-want +got):\n%s", diff)
		}
		n := h.noticesCopy()[0]
		if n.Exit.Code != 1 || n.Reason != "lost leadership" || n.Pid != procs[0].pid || len(n.Tail) == 0 {
			t.Errorf("exited notice = %+v, want code 1, reason, pid %d and a tail", n, procs[0].pid)
		}
		if got := h.s.Status().State; got != StateStopped {
			t.Errorf("final state %v, want stopped", got)
		}
	})
}

func TestNoRestartOnExitConfig(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(i int, p *fakeProc) {
			p.sleep(time.Second)
			p.reason("replica id mismatch")
			p.exitCode(ExitConfig)
		}, nil)
		err := waitResult(t, h.start(t.Context()))
		if !errors.Is(err, ErrFatal) || ExitCode(err) != ExitConfig {
			t.Fatalf("Run = %v (exit %d), want ErrFatal (exit 78)", err, ExitCode(err))
		}
		if !strings.Contains(err.Error(), "replica id mismatch") {
			t.Errorf("Run error %q does not carry the child's reason", err)
		}
		if n := len(h.l.started()); n != 1 {
			t.Errorf("started %d children, want 1", n)
		}
		if diff := cmp.Diff([]Event{EventExited, EventFatal}, h.events()); diff != "" {
			t.Errorf("hook events (-want +got):\n%s", diff)
		}
		st := h.s.Status()
		if st.State != StateFatal || st.Restarts != 0 {
			t.Errorf("status = %+v, want fatal with 0 restarts", st)
		}
		last := h.sdStates("STATUS=")
		if len(last) == 0 || !strings.HasPrefix(last[len(last)-1].state, "STATUS=fatal") ||
			!strings.Contains(last[len(last)-1].state, "replica id mismatch") {
			t.Errorf("last STATUS= = %v, want fatal with the reason", last)
		}
	})
}

func TestBackoffGrowsAndResets(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const quick = 6
		h := newHarness(t, func(i int, p *fakeProc) {
			switch {
			case i < quick || i == quick+1:
				p.sleep(10 * time.Millisecond)
				p.exitCode(1)
			case i == quick:
				p.ready()
				p.sleep(20 * time.Second)
				p.exitCode(1)
			default:
				p.ready()
				p.serve()
			}
		}, func(c *Config) {
			c.Policy = Policy{
				MinUptime:         time.Second,
				BackoffInitial:    100 * time.Millisecond,
				BackoffMax:        time.Second,
				BackoffResetAfter: 10 * time.Second,
			}
		})
		ctx, cancel := context.WithCancel(t.Context())
		res := h.start(ctx)
		time.Sleep(time.Minute)
		synctest.Wait()
		procs := h.l.started()
		if len(procs) != quick+3 {
			t.Fatalf("started %d children, want %d", len(procs), quick+3)
		}
		base := []time.Duration{100, 200, 400, 800, 1000, 1000, 0, 200}
		for i, b := range base {
			b *= time.Millisecond
			gap := procs[i+1].started.Sub(procs[i].endTime())
			lo, hi := b-b/4, min(b+b/4, time.Second)
			if gap < lo || gap > hi {
				t.Errorf("gap after child %d = %v, want in [%v, %v]", i, gap, lo, hi)
			}
		}
		backoffs := 0
		for _, e := range h.events() {
			if e == EventBackoff {
				backoffs++
			}
		}
		if backoffs != 7 {
			t.Errorf("%d backoff events, want 7 (every restart but the one after the healthy run)", backoffs)
		}
		cancel()
		if err := waitResult(t, res); err != nil {
			t.Fatalf("Run = %v", err)
		}
	})
}

func TestGiveUpAfterBudget(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(i int, p *fakeProc) {
			p.sleep(time.Second)
			p.end(Exit{Code: -1, Signal: syscall.SIGSEGV})
		}, func(c *Config) {
			c.Policy.MaxRestarts = 3
			c.Policy.RestartWindow = time.Minute
		})
		err := waitResult(t, h.start(t.Context()))
		if !errors.Is(err, ErrGaveUp) || ExitCode(err) != ExitGaveUp {
			t.Fatalf("Run = %v (exit %d), want ErrGaveUp (exit %d)", err, ExitCode(err), ExitGaveUp)
		}
		if n := len(h.l.started()); n != 4 {
			t.Errorf("started %d children, want 4 (1 + 3 restarts)", n)
		}
		st := h.s.Status()
		if st.State != StateGaveUp || st.Restarts != 3 || st.LastSignal != "SIGSEGV" {
			t.Errorf("status = %+v, want gave_up, 3 restarts, SIGSEGV", st)
		}
		ev := h.events()
		if len(ev) == 0 || ev[len(ev)-1] != EventGaveUp {
			t.Errorf("hook events %v, want gave_up last", ev)
		}
	})
}

func TestGracefulStop(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(i int, p *fakeProc) {
			p.ready()
			p.serve()
		}, nil)
		res := h.start(t.Context())
		time.Sleep(time.Second)
		h.sigs <- syscall.SIGTERM
		if err := waitResult(t, res); err != nil || ExitCode(err) != ExitOK {
			t.Fatalf("Run = %v, want nil", err)
		}
		p := h.l.started()[0]
		if got := p.signals(); !cmp.Equal(got, []syscall.Signal{syscall.SIGTERM}) {
			t.Errorf("child got %v, want [SIGTERM]", got)
		}
		if !p.killTime().IsZero() {
			t.Error("a child that stopped on SIGTERM was killed")
		}
		if len(h.sdStates("STOPPING=1")) != 1 {
			t.Errorf("sd_notify = %v, want one STOPPING=1", h.sdStates(""))
		}
		if len(h.events()) != 0 {
			t.Errorf("hooks ran %v on a requested stop", h.events())
		}
	})
}

func TestStopKillsAfterTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(i int, p *fakeProc) {
			p.ready()
			p.hang()
		}, func(c *Config) { c.StopTimeout = 3 * time.Second })
		ctx, cancel := context.WithCancel(t.Context())
		res := h.start(ctx)
		time.Sleep(time.Second)
		stopAt := time.Now()
		cancel()
		if err := waitResult(t, res); err != nil {
			t.Fatalf("Run = %v, want nil", err)
		}
		p := h.l.started()[0]
		if got := p.killTime().Sub(stopAt); got != 3*time.Second {
			t.Errorf("killed %v after the stop request, want the stop timeout 3s", got)
		}
		if st := h.s.Status(); st.State != StateStopped || st.LastSignal != "SIGKILL" {
			t.Errorf("status = %+v, want stopped, last signal SIGKILL", st)
		}
	})
}

func TestWatchdogKillsHungChild(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var lastBeat time.Time
		h := newHarness(t, func(i int, p *fakeProc) {
			p.ready()
			if i == 0 {
				for range 3 {
					p.sleep(time.Second)
					p.heartbeat()
				}
				lastBeat = time.Now()
				p.hang()
				return
			}
			p.serve()
		}, func(c *Config) { c.WatchdogTimeout = 5 * time.Second })
		ctx, cancel := context.WithCancel(t.Context())
		res := h.start(ctx)
		time.Sleep(time.Minute)
		synctest.Wait()
		procs := h.l.started()
		if len(procs) != 2 {
			t.Fatalf("started %d children, want 2", len(procs))
		}
		if got := procs[0].killTime().Sub(lastBeat); got != 5*time.Second {
			t.Errorf("hung child killed %v after its last heartbeat, want 5s", got)
		}
		if st := h.s.Status(); !strings.Contains(st.LastReason, "no heartbeat") || st.State != StateRunning {
			t.Errorf("status = %+v, want running with a watchdog reason", st)
		}
		cancel()
		_ = waitResult(t, res) // stopped by cancel: the result is not the point here
	})
}

func TestSystemdWatchdogOnlyWhileFresh(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var lastBeat time.Time
		h := newHarness(t, func(i int, p *fakeProc) {
			p.ready()
			for range 4 {
				p.sleep(time.Second)
				p.heartbeat()
			}
			lastBeat = time.Now()
			// Stuck beyond the reach of SIGKILL (say, in D state) until
			// the test lets go.
			<-release
			p.exitCode(0)
		}, func(c *Config) {
			c.WatchdogTimeout = 3 * time.Second
			c.Env = append(c.Env, "WATCHDOG_USEC=1000000")
			c.Launcher = &unkillable{c.Launcher}
		})
		start := time.Now()
		res := h.start(t.Context())
		time.Sleep(20 * time.Second)
		synctest.Wait()
		pings := h.sdStates("WATCHDOG=1")
		if len(pings) == 0 {
			t.Fatal("no WATCHDOG=1 sent while the child was healthy")
		}
		for _, p := range pings {
			if p.at.Sub(lastBeat) >= 3*time.Second {
				t.Errorf("WATCHDOG=1 at +%v, after heartbeats went stale at +%v", p.at.Sub(start), lastBeat.Add(3*time.Second).Sub(start))
			}
		}
		if last := pings[len(pings)-1].at; last.Before(lastBeat) {
			t.Errorf("last WATCHDOG=1 at +%v, want pings while fresh up to +%v", last.Sub(start), lastBeat.Sub(start))
		}
		close(release)
		_ = waitResult(t, res) // released to end the run: the result is not the point here
	})
}

// unkillable wraps a launcher so Kill reaches nobody.
type unkillable struct{ Launcher }

func (u *unkillable) Start(ctx context.Context) (Process, error) {
	p, err := u.Launcher.Start(ctx)
	return unkillableProc{p}, err
}

type unkillableProc struct{ Process }

func (unkillableProc) Kill() error { return nil }

func TestReadyTimeout(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(i int, p *fakeProc) {
			if i == 0 {
				p.hang()
				return
			}
			p.ready()
			p.serve()
		}, func(c *Config) { c.ReadyTimeout = 30 * time.Second })
		ctx, cancel := context.WithCancel(t.Context())
		res := h.start(ctx)
		time.Sleep(time.Minute)
		synctest.Wait()
		procs := h.l.started()
		if len(procs) != 2 {
			t.Fatalf("started %d children, want 2", len(procs))
		}
		if got := procs[0].killTime().Sub(procs[0].started); got != 30*time.Second {
			t.Errorf("unready child killed after %v, want 30s", got)
		}
		if gap := procs[1].started.Sub(procs[0].endTime()); gap == 0 {
			t.Error("restart after a ready timeout was immediate, want a backoff")
		}
		if len(h.sdStates("READY=1")) != 1 {
			t.Errorf("READY=1 sent %d times, want once (second child)", len(h.sdStates("READY=1")))
		}
		cancel()
		_ = waitResult(t, res) // stopped by cancel: the result is not the point here
	})
}

func TestReload(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var (
			mu     sync.Mutex
			action ReloadAction
			err    error
		)
		setReload := func(a ReloadAction, e error) {
			mu.Lock()
			defer mu.Unlock()
			action, err = a, e
		}
		h := newHarness(t, func(i int, p *fakeProc) {
			p.ready()
			p.serve()
		}, func(c *Config) {
			c.Reload = func(context.Context) (ReloadAction, error) {
				mu.Lock()
				defer mu.Unlock()
				return action, err
			}
		})
		ctx, cancel := context.WithCancel(t.Context())
		res := h.start(ctx)
		hup := func() {
			time.Sleep(time.Second)
			h.sigs <- syscall.SIGHUP
			time.Sleep(time.Second)
			synctest.Wait()
		}

		setReload(0, errors.New("regent.hcl:3,1-5: unsupported argument"))
		hup()
		first := h.l.started()[0]
		if got := first.signals(); len(got) != 0 {
			t.Errorf("invalid config: child got %v, want no signal", got)
		}
		st := h.s.Status()
		if st.State != StateRunning || !strings.Contains(st.ReloadError, "unsupported argument") {
			t.Errorf("invalid config: status = %+v, want running with the reload error", st)
		}
		statuses := h.sdStates("STATUS=")
		if last := statuses[len(statuses)-1].state; !strings.Contains(last, "reload failed: regent.hcl:3,1-5") {
			t.Errorf("invalid config: last STATUS= %q, want the diagnostics", last)
		}
		if n := len(h.sdStates("RELOADING=1\nMONOTONIC_USEC=")); n != 1 {
			t.Errorf("RELOADING=1 with MONOTONIC_USEC sent %d times, want 1", n)
		}

		setReload(ReloadForward, nil)
		hup()
		if got := first.signals(); !cmp.Equal(got, []syscall.Signal{syscall.SIGHUP}) {
			t.Errorf("valid config: child got %v, want [SIGHUP]", got)
		}
		if st := h.s.Status(); st.ReloadError != "" {
			t.Errorf("valid config: reload error %q not cleared", st.ReloadError)
		}

		setReload(ReloadRestart, nil)
		hup()
		procs := h.l.started()
		if len(procs) != 2 {
			t.Fatalf("restart reload: %d children, want 2", len(procs))
		}
		if got := first.signals(); !cmp.Equal(got, []syscall.Signal{syscall.SIGHUP, syscall.SIGTERM}) {
			t.Errorf("restart reload: first child got %v, want [SIGHUP SIGTERM]", got)
		}
		if gap := procs[1].started.Sub(first.endTime()); gap != 0 {
			t.Errorf("restart reload waited %v, want immediate", gap)
		}
		if st := h.s.Status(); st.State != StateRunning || st.Restarts != 1 {
			t.Errorf("restart reload: status %+v, want running with 1 restart", st)
		}
		if ev := h.events(); len(ev) != 0 {
			t.Errorf("restart reload ran hooks %v", ev)
		}
		if n := len(h.sdStates("READY=1")); n != 5 {
			t.Errorf("READY=1 sent %d times, want 5 (first child, three reloads, second child)", n)
		}
		cancel()
		_ = waitResult(t, res) // stopped by cancel: the result is not the point here
	})
}

func TestSystemdReadyAndStatus(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, func(i int, p *fakeProc) {
			p.sleep(2 * time.Second)
			p.ready()
			p.serve()
		}, nil)
		ctx, cancel := context.WithCancel(t.Context())
		start := time.Now()
		res := h.start(ctx)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		ready := h.sdStates("READY=1")
		if len(ready) != 1 || ready[0].at.Sub(start) != 2*time.Second {
			t.Errorf("READY=1 = %v, want once at +2s", ready)
		}
		var got []string
		for _, r := range h.sdStates("STATUS=") {
			got = append(got, r.state)
		}
		want := []string{"STATUS=starting, 0 restarts", "STATUS=starting, pid 1000, 0 restarts", "STATUS=running, pid 1000, 0 restarts"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("STATUS= lines (-want +got):\n%s", diff)
		}
		cancel()
		_ = waitResult(t, res) // stopped by cancel: the result is not the point here
	})
}

// failingLauncher cannot start anything.
type failingLauncher struct{ starts []time.Time }

func (l *failingLauncher) Start(context.Context) (Process, error) {
	l.starts = append(l.starts, time.Now())
	return nil, errors.New("start /usr/bin/regent: permission denied")
}

func TestStartFailureBacksOffAndGivesUp(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		l := &failingLauncher{}
		h := newHarness(t, nil, func(c *Config) {
			c.Launcher = l
			c.Policy.MaxRestarts = 2
		})
		err := waitResult(t, h.start(t.Context()))
		if !errors.Is(err, ErrGaveUp) {
			t.Fatalf("Run = %v, want ErrGaveUp", err)
		}
		if len(l.starts) != 3 {
			t.Fatalf("%d start attempts, want 3", len(l.starts))
		}
		for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
			gap := l.starts[i+1].Sub(l.starts[i])
			if gap < want-want/4 || gap > want+want/4 {
				t.Errorf("gap %d = %v, want about %v", i, gap, want)
			}
		}
		if st := h.s.Status(); st.LastExit != "start failed" || !strings.Contains(st.LastReason, "permission denied") {
			t.Errorf("status = %+v, want the start failure", st)
		}
	})
}
