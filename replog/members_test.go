package replog_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/replogtest"
)

// waitMembers polls (in fake time) until ok holds for the leader's view.
func waitMembers(ctx context.Context, t *testing.T, n *replog.Node, what string, ok func([]replog.MemberStatus) bool) []replog.MemberStatus {
	t.Helper()
	var ms []replog.MemberStatus
	for range 600 {
		var err error
		if ms, err = n.Members(ctx); err != nil {
			t.Fatalf("Members: %v", err)
		}
		if ok(ms) {
			return ms
		}
		time.Sleep(100 * time.Millisecond) // fake time
	}
	t.Fatalf("%s: members never matched: %+v", what, ms)
	return nil
}

func memberAt(ms []replog.MemberStatus, addr string) (replog.MemberStatus, bool) {
	i := slices.IndexFunc(ms, func(m replog.MemberStatus) bool { return m.Addr == addr })
	if i < 0 {
		return replog.MemberStatus{}, false
	}
	return ms[i], true
}

// TestNodeOnlineReconfiguration replaces a voter at runtime while the leader
// keeps writing: remove 10.0.0.3, then add 10.0.0.4, which joins as a
// non-voter, catches up and is promoted; each refused request says why.
func TestNodeOnlineReconfiguration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		leaderAddr := c.masters[0]
		c.elect(ctx, leaderAddr)
		leader := c.member(leaderAddr).node
		want := appendMany(ctx, t, leader, 2, 5, "before")
		waitMembers(ctx, t, leader, "initial voters", func(ms []replog.MemberStatus) bool {
			for _, m := range ms {
				if !m.Voter || !m.Known || m.Status != paxos.StatusVoting {
					return false
				}
			}
			return len(ms) == 3
		})

		refused := []struct {
			name string
			call func() error
			want error
		}{
			{"AddBeyondQuorum", func() error { return leader.AddMaster(ctx, "10.0.0.9:5051") }, replog.ErrMembershipRefused},
			{"AddListed", func() error { return leader.AddMaster(ctx, c.masters[1]) }, replog.ErrMembershipRefused},
			{"AddBadAddress", func() error { return leader.AddMaster(ctx, "10.0.0.9") }, replog.ErrMembershipRefused},
			{"RemoveLeader", func() error { _, err := leader.RemoveMaster(ctx, leaderAddr); return err }, replog.ErrMembershipRefused},
			{"RemoveUnknown", func() error { _, err := leader.RemoveMaster(ctx, "10.0.0.9:5051"); return err }, replog.ErrMembershipRefused},
			{"RemoveOnFollower", func() error { _, err := c.member(c.masters[1]).node.RemoveMaster(ctx, c.masters[2]); return err }, replog.ErrNotLeader},
		}
		for _, r := range refused {
			if err := r.call(); !errors.Is(err, r.want) {
				t.Errorf("%s: err = %v, want %v", r.name, err, r.want)
			} else {
				t.Logf("%s: %v", r.name, err)
			}
		}

		// Remove the third master by its ReplicaID.
		victim := c.member(c.masters[2]).node.ID()
		addr, err := leader.RemoveMaster(ctx, strconv.FormatUint(uint64(victim), 10))
		if err != nil || addr != c.masters[2] {
			t.Fatalf("RemoveMaster(%d) = %q, %v; want %q", victim, addr, err, c.masters[2])
		}
		waitMembers(ctx, t, leader, "removed", func(ms []replog.MemberStatus) bool {
			_, ok := memberAt(ms, c.masters[2])
			return !ok && len(ms) == 2
		})
		if got := leader.Status(); got.Voters != 2 || got.Quorum != 2 {
			t.Errorf("after removal: voters %d quorum %d, want 2 and 2", got.Voters, got.Quorum)
		}
		c.stop(c.masters[2])

		// A new master whose own list names the two others and itself.
		newAddr := "10.0.0.4:5051"
		cfg := c.config(newAddr, 4)
		cfg.Masters = []string{c.masters[0], c.masters[1], newAddr}
		nn, err := replog.New(cfg, replogtest.NewStorage())
		if err != nil {
			t.Fatal(err)
		}
		tr := c.net.Join(newAddr, nn.ID, nn.Step)
		errc := make(chan error, 1)
		go func() { errc <- nn.Run(context.Background(), tr) }()
		defer func() {
			tr.Close()
			nn.Close()
			if err := <-errc; err != nil {
				t.Errorf("Run(%s) = %v", newAddr, err)
			}
		}()
		if err := leader.AddMaster(ctx, newAddr); err != nil {
			t.Fatalf("AddMaster(%s): %v", newAddr, err)
		}
		if err := leader.AddMaster(ctx, "10.0.0.5:5051"); !errors.Is(err, replog.ErrMembershipRefused) {
			t.Errorf("a second add while the first is in progress: %v, want ErrMembershipRefused", err)
		}
		after := appendMany(ctx, t, leader, 2, 5, "during")
		ms := waitMembers(ctx, t, leader, "promoted", func(ms []replog.MemberStatus) bool {
			m, ok := memberAt(ms, newAddr)
			return ok && m.Voter && m.Status == paxos.StatusVoting && m.Lag == 0
		})
		if m, _ := memberAt(ms, newAddr); m.ID != nn.ID() || !m.Listed || !m.Connected {
			t.Errorf("new member = %+v, want id %d, listed and connected", m, nn.ID())
		}
		if got := leader.Masters(); !slices.Equal(got, []string{c.masters[0], c.masters[1], newAddr}) {
			t.Errorf("Masters() = %v", got)
		}
		if got := leader.Status(); got.Voters != 3 || got.Quorum != 2 {
			t.Errorf("after the addition: voters %d quorum %d, want 3 and 2", got.Voters, got.Quorum)
		}
		for p, d := range after {
			want[p] = d
		}
		checkEntries(t, newAddr, readAll(ctx, t, nn, 0, len(want)), want)

		// The leader fails before the operator updated the files: the next
		// coordinator's list still names 10.0.0.3 and not 10.0.0.4. It
		// keeps the connected member added at runtime, does not bring back
		// the removed one (stopped), and its quorum counts the new member.
		c.stop(leaderAddr)
		next := c.member(c.masters[1]).node
		c.elect(ctx, c.masters[1])
		time.Sleep(2 * time.Second) // fake time: many reconcile periods
		ms = waitMembers(ctx, t, next, "after failover", func(ms []replog.MemberStatus) bool {
			m, ok := memberAt(ms, newAddr)
			return ok && m.Voter
		})
		if m, ok := memberAt(ms, c.masters[2]); ok && m.Member {
			t.Errorf("the removed master is a member again after failover: %+v", m)
		}
		if got := next.Status(); got.Voters != 3 || got.Reachable != 2 {
			t.Errorf("after failover: %d voters, %d reachable; want 3 and 2 (the old leader is down)", got.Voters, got.Reachable)
		}
		appendMany(ctx, t, next, 1, 3, "after-failover")
	})
}
