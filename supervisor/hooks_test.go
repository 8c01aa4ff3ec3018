package supervisor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
)

func TestExecHookEnvironmentAndStdin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	envFile, inFile := filepath.Join(dir, "env"), filepath.Join(dir, "stdin")
	h := Hook{Name: "rec", Exec: []string{"/bin/sh", "-c", `env | grep '^REGENT_' | sort > "$1"; cat > "$2"`, "hook", envFile, inFile}}
	n := Notice{
		Event:      EventFatal,
		Exit:       Exit{Code: 78},
		Restarts:   3,
		Reason:     "replica id mismatch",
		Pid:        4242,
		Tail:       []string{"first line", "last line"},
		Suppressed: 2,
	}
	if err := execHook(t.Context(), h, n); err != nil {
		t.Fatalf("execHook: %v", err)
	}
	env, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"REGENT_BACKOFF=0s",
		"REGENT_EVENT=fatal",
		"REGENT_EXIT_CODE=78",
		"REGENT_PID=4242",
		"REGENT_REASON=replica id mismatch",
		"REGENT_RESTARTS=3",
		"REGENT_SIGNAL=",
		"REGENT_SUPPRESSED=2",
	}
	if diff := cmp.Diff(want, strings.Split(strings.TrimSpace(string(env)), "\n")); diff != "" {
		t.Errorf("hook environment (-want +got):\n%s", diff)
	}
	in, err := os.ReadFile(inFile)
	if err != nil {
		t.Fatal(err)
	}
	if got := string(in); got != "first line\nlast line\n" {
		t.Errorf("hook stdin = %q, want the tail lines", got)
	}

	sig := Notice{Event: EventExited, Exit: Exit{Code: -1, Signal: syscall.SIGKILL}}
	if got := sig.env(); got[1] != "REGENT_EXIT_CODE=" || got[2] != "REGENT_SIGNAL=SIGKILL" {
		t.Errorf("env of a signalled exit = %q", got[1:3])
	}
}

func TestExecHookTimeoutAndFailure(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := execHook(ctx, Hook{Name: "slow", Exec: []string{"/bin/sh", "-c", "sleep 30 & sleep 30"}}, Notice{Event: EventExited})
	if err == nil || !strings.Contains(err.Error(), "deadline exceeded") {
		t.Errorf("slow hook: err = %v, want a deadline error", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("slow hook took %v to be stopped, want about the timeout", took)
	}
	err = execHook(t.Context(), Hook{Name: "fails", Exec: []string{"/bin/sh", "-c", "echo oops >&2; exit 3"}}, Notice{Event: EventExited})
	if err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("failing hook: err = %v, want exit status with its output", err)
	}
}

func TestHooksRateLimitedAndNeverBlocking(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var (
			mu    sync.Mutex
			runs  []Notice
			stuck []Notice
		)
		block := make(chan struct{})
		cfg := DefaultConfig()
		cfg.HookBurst = 2
		cfg.HookInterval = time.Minute
		cfg.HookTimeout = 10 * time.Second
		cfg.Hooks = []Hook{
			{Name: "pager", Exec: []string{"x"}, Events: []Event{EventFatal, EventExited}},
			{Name: "stuck", Exec: []string{"x"}, Events: []Event{EventBackoff}},
		}
		run := func(ctx context.Context, h Hook, n Notice) error {
			if h.Name == "stuck" {
				mu.Lock()
				stuck = append(stuck, n)
				mu.Unlock()
				select {
				case <-block:
				case <-ctx.Done():
				}
				return ctx.Err()
			}
			mu.Lock()
			defer mu.Unlock()
			runs = append(runs, n)
			return nil
		}
		hs := startHooks(t.Context(), &cfg, run, hclog.NewNullLogger())
		for range 4 {
			hs.emit(Notice{Event: EventExited})
		}
		hs.emit(Notice{Event: EventRecovered}) // nobody listens
		for range 3 * hookQueue {
			hs.emit(Notice{Event: EventBackoff}) // must not block
		}
		synctest.Wait()
		mu.Lock()
		if len(runs) != 2 {
			t.Errorf("pager ran %d times in a burst, want 2 (the burst limit)", len(runs))
		}
		// The stuck hook took one event at most before its queue filled;
		// the rest were dropped and counted (in its first run's notice, or
		// still pending for the next).
		if len(stuck) != 1 {
			t.Errorf("stuck hook started %d runs, want 1", len(stuck))
		} else if d := stuck[0].Suppressed + hs.workers[1].dropped.Load(); d < 2*hookQueue-1 {
			t.Errorf("stuck hook dropped %d events, want at least %d", d, 2*hookQueue-1)
		}
		mu.Unlock()
		hs.emit(Notice{Event: EventFatal})
		synctest.Wait()
		mu.Lock()
		if len(runs) != 3 || runs[2].Event != EventFatal || runs[2].Suppressed != 2 {
			t.Errorf("fatal over the limit: runs %+v, want a third (fatal) with 2 suppressed", runs)
		}
		mu.Unlock()
		time.Sleep(time.Minute)
		hs.emit(Notice{Event: EventExited})
		synctest.Wait()
		mu.Lock()
		if len(runs) != 4 || runs[3].Event != EventExited || runs[3].Suppressed != 0 {
			t.Errorf("after the interval: runs %+v, want a fourth (exited)", runs)
		}
		mu.Unlock()
		close(block)
		hs.close()
	})
}

func TestParseEvent(t *testing.T) {
	t.Parallel()
	for e := EventExited; e <= EventRecovered; e++ {
		got, err := ParseEvent(e.String())
		if err != nil || got != e {
			t.Errorf("ParseEvent(%q) = %v, %v; want %v", e.String(), got, err, e)
		}
	}
	if _, err := ParseEvent("crashed"); err == nil {
		t.Error("ParseEvent(crashed) = nil error")
	}
}
