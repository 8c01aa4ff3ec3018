package replog_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/replogtest"
)

// replaced reports whether the membership, as the running nodes see it, is
// three voters that are exactly the running nodes, all of them VOTING and
// learned to the same position: the operator's condition for replacing the
// next master.
func (c *cluster) replaced() bool {
	ids := map[paxos.ReplicaID]bool{}
	var learned []paxos.Position
	for _, addr := range c.masters {
		st := c.member(addr).node.Status()
		if st.ReplicaStatus != paxos.StatusVoting {
			return false
		}
		ids[c.member(addr).node.ID()] = true
		learned = append(learned, st.LearnedTo)
	}
	if learned[0] != learned[1] || learned[1] != learned[2] {
		return false
	}
	for _, addr := range c.masters {
		ms := c.member(addr).node.Status().Membership
		// Cluster 0 is the initialisation set, before the first
		// EntryConfig: a replica wiped then is never replaced (the set must
		// answer in full to write position 0).
		if ms.Cluster == 0 || len(ms.Members) != 3 {
			return false
		}
		for _, m := range ms.Members {
			if !m.Voter || !ids[m.ID] {
				return false
			}
		}
	}
	return true
}

var (
	chaosSeed  = flag.Int64("chaos.seed", 0, "seed of TestNodeChaos (0: a few fixed seeds)")
	chaosSteps = flag.Int("chaos.steps", 40, "fault steps of TestNodeChaos")
)

// TestNodeChaos runs three nodes through seeded faults (partitions, message
// loss, crashes that keep only the synced state, synced saves that take up
// to a few leases) while a writer appends to
// whichever node is the coordinator, then heals everything and checks that
// every replica holds every acknowledged append, at the position it was
// acknowledged at, and that no two replicas disagree on any position.
func TestNodeChaos(t *testing.T) {
	seeds := []int64{1, 2, 3}
	if *chaosSeed != 0 {
		seeds = []int64{*chaosSeed}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { runChaos(t, seed, *chaosSteps) })
		})
	}
}

func runChaos(t *testing.T, seed int64, steps int) {
	rnd := rand.New(rand.NewSource(seed))
	disks := map[string]*chaosDisk{}
	var disksMu sync.Mutex
	c := newClusterWith(t, 3, func(addr string, st *replogtest.Storage) replog.Storage {
		disksMu.Lock()
		defer disksMu.Unlock()
		d := disks[addr]
		if d == nil {
			d = &chaosDisk{}
			disks[addr] = d
		}
		return &slowDiskStore{Storage: st, disk: d} // the disk outlives a crash
	}, nil)
	drnd := rand.New(rand.NewSource(seed + 2)) // the slow disks' own
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wctx, wcancel := context.WithCancel(ctx) // the writer's: it stops before the checks
	defer wcancel()

	var mu sync.Mutex
	acked := map[paxos.Position]string{}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	var writer sync.WaitGroup
	defer writer.Wait()
	writer.Go(func() { // the writer
		for i := 0; wctx.Err() == nil; i++ {
			for _, addr := range c.masters {
				m := c.member(addr)
				if m.node.Status().Role != paxos.RoleCoordinator {
					continue
				}
				actx, acancel := context.WithTimeout(wctx, 2*time.Second)
				data := fmt.Sprintf("w%d", i)
				p, err := m.node.Append(actx, []byte(data))
				acancel()
				if err == nil {
					mu.Lock()
					if old, dup := acked[p]; dup {
						t.Errorf("seed %d: position %d acknowledged twice: %q and %q", seed, p, old, data)
					}
					acked[p] = data
					mu.Unlock()
				}
			}
			time.Sleep(30 * time.Millisecond) // fake time: pace the writer
		}
	})
	crnd := rand.New(rand.NewSource(seed + 1)) // the campaigner's own
	wg.Go(func() {                             // campaigns: someone keeps trying to lead
		for ctx.Err() == nil {
			addr := c.masters[crnd.Intn(len(c.masters))]
			if m := c.member(addr); m.node.Status().Role == paxos.RoleFollower {
				ectx, ecancel := context.WithTimeout(ctx, time.Second)
				_, _ = m.node.Elect(ectx) // losing is routine here
				ecancel()
			}
			time.Sleep(200 * time.Millisecond)
		}
	})

	for step := range steps {
		switch rnd.Intn(6) {
		case 0:
			a := c.masters[rnd.Intn(3)]
			c.net.Partition([]string{a})
			t.Logf("seed %d step %d: isolate %s", seed, step, a)
		case 1:
			c.net.Heal()
			c.net.SetDropRate(0)
			t.Logf("seed %d step %d: heal", seed, step)
		case 2:
			c.net.SetDropRate(0.3)
			t.Logf("seed %d step %d: drop 30%%", seed, step)
		case 3:
			a := c.masters[rnd.Intn(3)]
			crashed := c.stop(a).st.Crash()
			c.start(a, crashed)
			t.Logf("seed %d step %d: crash and restart %s", seed, step, a)
		case 4, 5: // let it run, or every other step:
			if step%2 == 0 {
				break
			}
			// Wipe a replica (the guide's "replace a master"), but only once
			// the previous replacement is complete: three voters, each one a
			// running node. Two replicas replaced at once can lose the log.
			a := c.masters[rnd.Intn(3)]
			if c.replaced() {
				c.stop(a)
				c.start(a, replogtest.NewStorage())
				t.Logf("seed %d step %d: wipe %s", seed, step, a)
			}
		}
		mu.Lock()
		initialised := len(acked) > 0
		mu.Unlock()
		// Slow disks only once the log is initialised: until position 0
		// (the first membership) is learned, every replica of the
		// initialisation set must answer, and slow disks on top of crashes
		// can keep that from happening for the whole run (with the driver
		// blocked in its saves as well).
		if d := drnd.Intn(3); initialised && d == 0 {
			a := c.masters[drnd.Intn(3)]
			n, d := 1+drnd.Intn(3), time.Duration(100+drnd.Intn(2000))*time.Millisecond
			disksMu.Lock()
			disks[a].slowNext(n, d)
			disksMu.Unlock()
			t.Logf("seed %d step %d: the next %d synced saves of %s take %v", seed, step, n, a, d)
		}
		time.Sleep(time.Duration(200+rnd.Intn(1500)) * time.Millisecond)
	}
	c.net.Heal()
	c.net.SetDropRate(0)
	wcancel() // the campaigner goes on, so a leader exists to fill and catch up
	writer.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		for _, addr := range c.masters {
			st := c.member(addr).node.Status()
			t.Logf("seed %d: %s: %v %v begin %d end %d learned-to %d leader %d voters %d", seed, addr, st.Role, st.ReplicaStatus, st.Begin, st.End, st.LearnedTo, st.Leader, st.Voters)
		}
		t.Fatalf("seed %d: no append was acknowledged", seed)
	}
	var top paxos.Position
	for p := range acked {
		top = max(top, p)
	}
	// Every replica, read from the start up to the highest acknowledged
	// position, must agree with every other and hold every acked append.
	rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
	defer rcancel()
	logs := map[string]map[paxos.Position]string{}
	for _, addr := range c.masters {
		n := c.member(addr).node
		got := map[paxos.Position]string{}
		for from := paxos.Position(0); from <= top; {
			es, err := n.Read(rctx, from)
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("seed %d: %s never learned past %d (top %d), status %+v", seed, addr, from, top, n.Status())
			}
			if err != nil {
				t.Fatalf("seed %d: Read(%d) on %s: %v", seed, from, addr, err)
			}
			for _, e := range es {
				got[e.Position] = string(e.Data)
			}
			from = es[len(es)-1].Position + 1
		}
		logs[addr] = got
		for p, d := range acked {
			if got[p] != d {
				t.Errorf("seed %d: %s holds %q at position %d, acknowledged %q", seed, addr, got[p], p, d)
			}
		}
	}
	for p, d := range logs[c.masters[0]] {
		for _, addr := range c.masters[1:] {
			if e, ok := logs[addr][p]; ok && e != d {
				t.Errorf("seed %d: position %d is %q on %s but %q on %s", seed, p, d, c.masters[0], e, addr)
			}
		}
	}
	if len(c.violations) > 0 {
		t.Errorf("seed %d: persist-before-send violated:\n%v", seed, c.violations)
	}
	cancel()
	wg.Wait()
	t.Logf("seed %d: %d appends acknowledged, top position %d", seed, len(acked), top)
}

// chaosDisk is one master's disk in the chaos test: it can make the next
// synced saves slow.
type chaosDisk struct {
	mu   sync.Mutex
	n    int
	slow time.Duration
}

func (d *chaosDisk) slowNext(n int, slow time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.n, d.slow = n, slow
}

// take returns how long the next synced save waits.
func (d *chaosDisk) take() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.n == 0 {
		return 0
	}
	d.n--
	return d.slow
}

// slowDiskStore is a store on a chaosDisk.
type slowDiskStore struct {
	*replogtest.Storage
	disk *chaosDisk
}

func (s *slowDiskStore) Save(b replog.Batch) error {
	if b.Sync {
		if d := s.disk.take(); d > 0 {
			time.Sleep(d) // fake time: a stalled fdatasync
		}
	}
	return s.Storage.Save(b)
}
