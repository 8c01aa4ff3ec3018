package replog_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/replogtest"
)

// slowStore makes one synced Save slow, as a stalled fdatasync would: once
// armed, the next synced Save waits d before it saves.
type slowStore struct {
	*replogtest.Storage
	d       atomic.Int64  // nanoseconds; taken by the next synced Save
	stalled chan struct{} // closed when the slow save starts waiting
	once    sync.Once
}

func (s *slowStore) Save(b replog.Batch) error {
	if b.Sync {
		if d := time.Duration(s.d.Swap(0)); d > 0 {
			s.once.Do(func() { close(s.stalled) })
			time.Sleep(d) // fake time: the disk is slow
		}
	}
	return s.Storage.Save(b)
}

// masterTiming is the log timing a master runs with (appliance/master.go):
// 10 ms ticks, heartbeats every 50 ms, a lease of 250 ms.
func masterTiming(cfg *replog.Config) {
	cfg.TickInterval = 10 * time.Millisecond
	cfg.HeartbeatTicks = 5
	cfg.LeaseTicks = 25
}

const masterLease = 250 * time.Millisecond

// Issue 5: a synced save on the leader that takes longer than the lease
// (an fdatasync of 443 ms was traced under load) used to stop its driver
// whole: no heartbeat left, the followers' leases lapsed and they elected
// another leader. The leader must keep its lease while a save is in flight,
// no follower may stop seeing it as the leader, and its appends go on once
// the save is done.
func TestNodeSlowSaveOnLeaderKeepsLeadership(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stall time.Duration
		who   []int // indexes in masters of the replicas whose save stalls; 0 leads
	}{
		{"leader, twice the lease", 2 * masterLease, []int{0}},
		{"leader, eight times the lease", 8 * masterLease, []int{0}},
		// A busy shared disk stalls every replica's fsync at once.
		{"both followers, twice the lease", 2 * masterLease, []int{1, 2}},
		{"every replica, twice the lease", 2 * masterLease, []int{0, 1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				slow := map[string]*slowStore{}
				var mu sync.Mutex
				c := newClusterWith(t, 3, func(addr string, st *replogtest.Storage) replog.Storage {
					s := &slowStore{Storage: st, stalled: make(chan struct{})}
					mu.Lock()
					slow[addr] = s
					mu.Unlock()
					return s
				}, masterTiming)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				leader := c.masters[0]
				c.elect(ctx, leader)
				ln := c.member(leader).node
				appendMany(ctx, t, ln, 2, 5, "before")
				proposal := ln.Status()
				// The followers hear from the new leader first (its first
				// heartbeat may still be on its way at the instant of the
				// election).
				for _, addr := range c.masters[1:] {
					for i := 0; c.member(addr).node.Status().Leader != ln.ID(); i++ {
						if i == 100 {
							t.Fatalf("%s never saw the leader", addr)
						}
						time.Sleep(10 * time.Millisecond) // fake time: one tick
					}
				}

				// Writers keep appending through the stall, 800 a second.
				var appended atomic.Int64
				wctx, wcancel := context.WithCancel(ctx)
				var wg sync.WaitGroup
				for range 4 {
					wg.Go(func() {
						for wctx.Err() == nil {
							if _, err := ln.Append(wctx, []byte("load")); err != nil {
								if wctx.Err() == nil {
									t.Errorf("Append during the stall: %v", err)
								}
								return
							}
							appended.Add(1)
							// Fake time stands still while the writers
							// run: pace them, or the samples below never
							// see time pass.
							time.Sleep(5 * time.Millisecond)
						}
					})
				}

				mu.Lock()
				var stores []*slowStore
				for _, i := range tc.who {
					stores = append(stores, slow[c.masters[i]])
				}
				mu.Unlock()
				for _, s := range stores {
					s.d.Store(int64(tc.stall))
				}
				for _, s := range stores {
					<-s.stalled
				}
				// Sample every tick while the save is stalled, and a lease
				// past it.
				for end := time.Now().Add(tc.stall + masterLease); time.Now().Before(end); {
					for _, addr := range c.masters[1:] {
						st := c.member(addr).node.Status()
						if st.Leader != ln.ID() || st.Role != paxos.RoleFollower {
							t.Fatalf("%v into a %v stall: %s sees leader %d as %v, want leader %d",
								time.Since(end.Add(-tc.stall-masterLease)), tc.stall, addr, st.Leader, st.Role, ln.ID())
						}
					}
					if st := ln.Status(); st.Role != paxos.RoleCoordinator || st.LeaseRemaining <= 0 {
						t.Fatalf("%v into a %v stall: the leader is %v with a lease of %v",
							time.Since(end.Add(-tc.stall-masterLease)), tc.stall, st.Role, st.LeaseRemaining)
					}
					time.Sleep(10 * time.Millisecond) // fake time: one sample per tick
				}
				// A follower that tries to campaign now is refused.
				if _, err := c.member(c.masters[1]).node.Elect(ctx); !errors.Is(err, replog.ErrNotLeader) {
					t.Errorf("Elect on a follower after the stall = %v, want ErrNotLeader (the lease is live)", err)
				}

				// Appends go on after the stall.
				before := appended.Load()
				for deadline := time.Now().Add(time.Second); appended.Load() < before+100 && time.Now().Before(deadline); {
					time.Sleep(10 * time.Millisecond) // fake time
				}
				wcancel()
				wg.Wait()
				if got := appended.Load() - before; got < 100 {
					t.Errorf("%d appends in the second after the stall, want at least 100", got)
				}
				if st := ln.Status(); st.Role != paxos.RoleCoordinator || st.Membership.Cluster != proposal.Membership.Cluster {
					t.Errorf("after the stall the leader is %v", st.Role)
				}
				want := appendMany(ctx, t, ln, 1, 3, "after")
				for _, addr := range c.masters {
					es := readAll(ctx, t, c.member(addr).node, maxPos(want), 1)
					checkEntries(t, addr, es, map[paxos.Position]string{maxPos(want): want[maxPos(want)]})
				}
				c.checkPersistBeforeSend(t)
			})
		})
	}
}

// A follower whose own driver stalled past the lease (a long pause, a
// starved CPU) finds the leader's heartbeats waiting in its inbox when it
// resumes. It must take them, each at the tick it arrived in, before it
// counts the ticks it missed: otherwise it judged the lease lapsed, and
// reported no leader (its master would campaign) while the leader was live
// all along.
func TestNodeStalledFollowerKeepsSeeingTheLeader(t *testing.T) {
	for _, stall := range []time.Duration{2 * masterLease, 8 * masterLease} {
		t.Run(stall.String(), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				c := newClusterWith(t, 3, nil, masterTiming)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				leader, follower := c.masters[0], c.masters[1]
				c.elect(ctx, leader)
				appendMany(ctx, t, c.member(leader).node, 1, 3, "before")
				fn := c.member(follower).node
				leaderID := c.member(leader).node.ID()
				var mu sync.Mutex
				var seen []paxos.ReplicaID
				fn.SetOnStatusForTest(func(s replog.Status) {
					mu.Lock()
					seen = append(seen, s.Leader)
					mu.Unlock()
				})
				if err := fn.StallForTest(ctx, stall); err != nil {
					t.Fatal(err)
				}
				time.Sleep(2 * masterLease) // fake time: the follower runs again
				want := appendMany(ctx, t, c.member(leader).node, 1, 3, "after")
				readAll(ctx, t, fn, maxPos(want), 1)
				mu.Lock()
				defer mu.Unlock()
				if len(seen) == 0 {
					t.Fatal("the follower published no status after its stall")
				}
				for i, id := range seen {
					if id != leaderID {
						t.Fatalf("status %d of %d after a %v stall names leader %d, want %d", i+1, len(seen), stall, id, leaderID)
					}
				}
			})
		})
	}
}
