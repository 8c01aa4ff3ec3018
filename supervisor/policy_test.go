package supervisor

import (
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPolicyDecide(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	times := func(n int, every time.Duration) []time.Time {
		var ts []time.Time
		for i := n; i > 0; i-- {
			ts = append(ts, ago(time.Duration(i)*every))
		}
		return ts
	}
	code := func(c int) Exit { return Exit{Code: c} }
	killed := Exit{Code: -1, Signal: syscall.SIGKILL}
	tests := []struct {
		name   string
		policy func(*Policy)
		out    Outcome
		hist   History
		want   Decision
	}{
		{
			name: "exit 0 stops",
			out:  Outcome{Exit: code(ExitOK), Uptime: time.Hour, Ready: true},
			want: Decision{Action: ActionStop},
		},
		{
			name: "exit 78 is fatal even on the first quick run",
			out:  Outcome{Exit: code(ExitConfig)},
			want: Decision{Action: ActionFatal},
		},
		{
			name: "exit 1 after a ready run restarts at once",
			out:  Outcome{Exit: code(1), Uptime: time.Second, Ready: true},
			want: Decision{Action: ActionRestart, History: History{Level: 1, Restarts: []time.Time{now}}},
		},
		{
			name: "a signal is transient",
			out:  Outcome{Exit: killed, Uptime: time.Second, Ready: true},
			want: Decision{Action: ActionRestart, History: History{Level: 1, Restarts: []time.Time{now}}},
		},
		{
			name: "a quick failure before ready backs off",
			out:  Outcome{Exit: code(1), Uptime: time.Second},
			want: Decision{Action: ActionRestart, Delay: 100 * time.Millisecond, History: History{Level: 1, Restarts: []time.Time{now}}},
		},
		{
			name: "min_uptime without ready counts as started",
			out:  Outcome{Exit: code(1), Uptime: 10 * time.Second},
			want: Decision{Action: ActionRestart, History: History{Level: 1, Restarts: []time.Time{now}}},
		},
		{
			name: "a ready timeout is a failed start whatever the uptime",
			out:  Outcome{Exit: killed, Uptime: 2 * time.Minute, ReadyTimedOut: true},
			want: Decision{Action: ActionRestart, Delay: 100 * time.Millisecond, History: History{Level: 1, Restarts: []time.Time{now}}},
		},
		{
			name: "a start that failed backs off",
			out:  Outcome{Exit: Exit{Code: -1, StartFailed: true}},
			want: Decision{Action: ActionRestart, Delay: 100 * time.Millisecond, History: History{Level: 1, Restarts: []time.Time{now}}},
		},
		{
			name: "exponential growth",
			out:  Outcome{Exit: code(1), Uptime: time.Second},
			hist: History{Level: 3, Restarts: times(3, time.Second)},
			want: Decision{Action: ActionRestart, Delay: 800 * time.Millisecond, History: History{Level: 4, Restarts: append(times(3, time.Second), now)}},
		},
		{
			name: "growth caps at backoff_max",
			out:  Outcome{Exit: code(1), Uptime: time.Second},
			hist: History{Level: 40},
			want: Decision{Action: ActionRestart, Delay: 30 * time.Second, History: History{Level: 41, Restarts: []time.Time{now}}},
		},
		{
			name: "ready but flapping keeps backing off",
			out:  Outcome{Exit: code(1), Uptime: 5 * time.Second, Ready: true},
			hist: History{Level: 2},
			want: Decision{Action: ActionRestart, Delay: 400 * time.Millisecond, History: History{Level: 3, Restarts: []time.Time{now}}},
		},
		{
			name: "a healthy run of backoff_reset_after resets the backoff",
			out:  Outcome{Exit: code(1), Uptime: time.Minute, Ready: true},
			hist: History{Level: 7},
			want: Decision{Action: ActionRestart, History: History{Level: 1, Restarts: []time.Time{now}}},
		},
		{
			name: "a long run that never started does not reset",
			out:  Outcome{Exit: killed, Uptime: time.Hour, ReadyTimedOut: true},
			hist: History{Level: 1},
			want: Decision{Action: ActionRestart, Delay: 200 * time.Millisecond, History: History{Level: 2, Restarts: []time.Time{now}}},
		},
		{
			name: "max_restarts within the window gives up",
			out:  Outcome{Exit: code(1), Uptime: time.Second},
			hist: History{Level: 10, Restarts: times(10, time.Second)},
			want: Decision{Action: ActionGiveUp, History: History{Level: 10, Restarts: times(10, time.Second)}},
		},
		{
			name: "restarts older than the window no longer count",
			out:  Outcome{Exit: code(1), Uptime: time.Second, Ready: true},
			hist: History{Level: 0, Restarts: times(10, time.Minute)},
			want: Decision{Action: ActionRestart, History: History{Level: 1, Restarts: append(times(4, time.Minute), now)}},
		},
		{
			name:   "max_restarts 0 never gives up",
			policy: func(p *Policy) { p.MaxRestarts = 0 },
			out:    Outcome{Exit: code(2), Uptime: time.Second, Ready: true},
			hist:   History{Level: 0, Restarts: times(100, time.Millisecond)},
			want:   Decision{Action: ActionRestart, History: History{Level: 1, Restarts: append(times(100, time.Millisecond), now)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := DefaultPolicy()
			if tt.policy != nil {
				tt.policy(&p)
			}
			got := p.Decide(now, tt.out, tt.hist, nil)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decide(%+v, %+v)\n(-want +got):\n%s", tt.out, tt.hist, diff)
			}
		})
	}
}

func TestPolicyJitterStaysInBounds(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	rnd := rand.New(rand.NewPCG(1, 2))
	for level := range 12 {
		base := min(p.BackoffInitial<<level, p.BackoffMax)
		lo, hi := base-base/4, min(base+base/4, p.BackoffMax)
		seen := make(map[time.Duration]bool)
		for range 200 {
			d := p.Decide(time.Time{}, Outcome{Exit: Exit{Code: 1}}, History{Level: level}, rnd).Delay
			if d < lo || d > hi {
				t.Fatalf("level %d: delay %v outside [%v, %v]", level, d, lo, hi)
			}
			seen[d] = true
		}
		if len(seen) < 50 {
			t.Errorf("level %d: only %d distinct delays in 200 draws: no jitter", level, len(seen))
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	if err := DefaultPolicy().Validate(); err != nil {
		t.Fatalf("DefaultPolicy().Validate() = %v", err)
	}
	bad := Policy{BackoffInitial: 0, BackoffMax: -1, MaxRestarts: 3, MinUptime: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("Validate() of a bad policy = nil")
	}
	for _, want := range []string{"min_uptime", "backoff_initial", "backoff_max", "restart_window"} {
		if !contains(err.Error(), want) {
			t.Errorf("Validate() = %q, want it to name %s", err, want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
