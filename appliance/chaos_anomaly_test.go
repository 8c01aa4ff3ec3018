package appliance

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/regent-ha/regent/supervisor"
)

// Scripted reproductions of anomalies the chaos harness found
// (docs/reliability.md, "Anomalies found"), run with the end-to-end tests
// once fixed.

// childStatus reads m's supervisor status.
func childStatus(t *testing.T, m *localMaster) supervisor.Status {
	t.Helper()
	st, err := supervisor.ReadStatus(filepath.Join(m.WorkDir, StateFileName))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestChaosRestartedFollowerKeepsLeader is anomaly A1: a follower's master
// that restarts (kill -9 of the child; the supervisor restarts it) must not
// depose the live leader. In chaos runs a restarted master took leadership
// from a live leader within a few seconds, which made that leader exit
// (fail-fast) and restart, which deposed the next one.
func TestChaosRestartedFollowerKeepsLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
	c := newTestCluster(t, 3, 2)
	startAll(t, c)
	leader := waitLeader(t, c, 60*time.Second)
	leaderChild := childStatus(t, leader).ChildPID
	for round := range 3 {
		var f *localMaster
		for _, m := range c.Masters() {
			if m != leader {
				f = m
				break
			}
		}
		before := childStatus(t, f)
		if err := syscall.Kill(before.ChildPID, syscall.SIGKILL); err != nil {
			t.Fatalf("round %d: kill %s's master (pid %d): %v", round, f.Name, before.ChildPID, err)
		}
		restarted := pollUntil(t.Context(), 20*time.Second, func() bool {
			st, err := supervisor.ReadStatus(filepath.Join(f.WorkDir, StateFileName))
			return err == nil && st.ChildPID != before.ChildPID && !st.ReadyAt.IsZero()
		})
		if !restarted {
			t.Fatalf("round %d: %s's master was not restarted within 20 s", round, f.Name)
		}
		// Watch the leader for a while: it must stay the leader, and its
		// master must not exit.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			li, ok := c.Leader(ctx, f)
			cancel()
			if st := childStatus(t, leader); st.ChildPID != leaderChild {
				t.Fatalf("round %d: leader %s's master exited (%s, reason %q) after %s's master restarted", round, leader.Name, st.LastExit, st.LastReason, f.Name)
			}
			if ok && li.Master != leader {
				t.Fatalf("round %d: %s names %s as leader after its restart, want %s", round, f.Name, li.Master.Name, leader.Name)
			}
			hold(t.Context(), 100*time.Millisecond) // polling real processes
		}
	}
}
