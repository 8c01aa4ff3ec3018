package replog_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/regent-ha/regent/replog"
)

// A replica restarted behind the others publishes its catch-up's progress in
// Status while it catches up, and none once it caught up; LearnedTotal keeps
// what it learned.
func TestNodeStatusShowsCatchup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		leader, victim := c.masters[0], c.masters[2]
		c.elect(ctx, leader)
		appendMany(ctx, t, c.member(leader).node, 2, 5, "before")
		crashed := c.stop(victim).st.Crash()
		more := appendMany(ctx, t, c.member(leader).node, 4, 10, "during")
		m := c.start(victim, crashed)
		// No fake time passed since the start: the victim has heard no
		// heartbeat yet, so it has not begun to catch up.
		var mu sync.Mutex
		var seen []replog.CatchupProgress
		m.node.SetOnStatusForTest(func(s replog.Status) {
			if s.Catchup.Active {
				mu.Lock()
				seen = append(seen, s.Catchup)
				mu.Unlock()
			}
		})
		readAll(ctx, t, m.node, maxPos(more), 1)
		synctest.Wait() // the driver publishes its status after the entries
		mu.Lock()
		defer mu.Unlock()
		if len(seen) == 0 {
			t.Fatal("the restarted replica published no catch-up in its status")
		}
		first := seen[0]
		if first.Peer != c.member(leader).node.ID() || first.Target <= first.From || first.Started.IsZero() {
			t.Errorf("first catch-up status %+v: want the leader as peer, a target above its beginning and a start", first)
		}
		for _, p := range seen {
			if p.From != first.From || p.LearnedTo < p.From || p.Done() > p.Total() {
				t.Fatalf("catch-up status %+v after %+v: the beginning moved or progress is out of range", p, first)
			}
		}
		end := m.node.Status()
		if end.Catchup.Active || end.Catchup.Target != 0 {
			t.Errorf("after catching up Status().Catchup = %+v, want none", end.Catchup)
		}
		if want := uint64(maxPos(more) - first.From); end.Catchup.LearnedTotal < want {
			t.Errorf("LearnedTotal %d after learning from %d to %d, want at least %d", end.Catchup.LearnedTotal, first.From, maxPos(more), want)
		}
	})
}
