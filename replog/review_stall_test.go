package replog_test

// Review tests for the driver's "save off the loop" change (awaitSave,
// takeWhileSaving, free, deferred): they check that a slow save keeps the
// rules the log rests on, and that the driver stays responsive.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/replogtest"
)

// reviewStore holds synced saves while armed: a synced Save waits for the
// gate (a channel), and may then fail with failErr; every Save first sleeps
// delay.
type reviewStore struct {
	*replogtest.Storage
	mu      sync.Mutex
	gate    chan struct{} // non-nil: the next synced Save waits until it is closed
	stalled chan struct{} // closed when a gated Save starts waiting
	delay   atomic.Int64  // nanoseconds every Save sleeps (fake time)
	failErr error         // returned by the gated Save instead of saving
}

func newReviewStore(st *replogtest.Storage) *reviewStore {
	return &reviewStore{Storage: st}
}

// arm makes the next synced Save wait until release is called, and fail
// with err if err is non-nil. It returns a channel closed when that Save
// starts waiting.
func (s *reviewStore) arm(err error) <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate, s.stalled, s.failErr = make(chan struct{}), make(chan struct{}), err
	return s.stalled
}

// release lets the gated Save go on.
func (s *reviewStore) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

func (s *reviewStore) Save(b replog.Batch) error {
	if d := time.Duration(s.delay.Load()); d > 0 {
		time.Sleep(d) // fake time: a slow disk
	}
	if !b.Sync {
		return s.Storage.Save(b)
	}
	s.mu.Lock()
	gate, stalled, failErr := s.gate, s.stalled, s.failErr
	if gate != nil {
		s.stalled, s.failErr = nil, nil
	}
	s.mu.Unlock()
	if gate == nil {
		return s.Storage.Save(b)
	}
	if stalled != nil {
		close(stalled)
	}
	<-gate
	if failErr != nil {
		return failErr
	}
	return s.Storage.Save(b)
}

// reviewCluster is a 3-replica cluster with master timing whose stores are
// gateStores, by address.
func reviewCluster(t *testing.T) (*cluster, map[string]*reviewStore) {
	var mu sync.Mutex
	stores := map[string]*reviewStore{}
	c := newClusterWith(t, 3, func(addr string, st *replogtest.Storage) replog.Storage {
		s := newReviewStore(st)
		mu.Lock()
		stores[addr] = s
		mu.Unlock()
		return s
	}, masterTiming)
	mu.Lock()
	defer mu.Unlock()
	out := make(map[string]*reviewStore, len(stores))
	for k, v := range stores {
		out[k] = v
	}
	return c, out
}

// A follower whose synced save is stalled when a new coordinator takes over
// steps the new coordinator's heartbeats (and so sees it as the leader), but
// its answer accepting them promises the new proposal, which is not yet
// durable: that answer must wait for the save of the raised promise. The
// cluster's filter (checkDurable) flags any accepting answer sent before its
// promise was synced.
func TestReviewPromiseRaisedDuringStallWaitsForItsSync(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c, stores := reviewCluster(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a, f, g := c.masters[0], c.masters[1], c.masters[2]
		c.elect(ctx, a)
		an := c.member(a).node
		appendMany(ctx, t, an, 1, 3, "before")

		stalled := stores[f].arm(nil)
		appendMany(ctx, t, an, 1, 1, "stall") // learned by a and g; f's accept stalls
		<-stalled
		durableBefore, _ := c.member(f).st.Durable()

		an.Demote()
		c.elect(ctx, g) // retries until g's lease of a lapses
		gn := c.member(g).node
		gid := gn.ID()
		promised := gn.Status()
		if promised.Role != paxos.RoleCoordinator {
			t.Fatalf("g is %v after Elect", promised.Role)
		}

		// The lease of a new coordinator starts with the answers to its
		// first heartbeat.
		for deadline := time.Now().Add(masterLease); gn.Status().LeaseRemaining <= 0; {
			if time.Now().After(deadline) {
				t.Fatalf("new coordinator %s has no lease a lease after its election", g)
			}
			time.Sleep(10 * time.Millisecond) // fake time
		}
		// f keeps stepping g's heartbeats while its save is stalled.
		fn := c.member(f).node
		var sawLeader bool
		for end := time.Now().Add(2 * masterLease); time.Now().Before(end); {
			if fn.Status().Leader == gid {
				sawLeader = true
			}
			if st := gn.Status(); st.Role != paxos.RoleCoordinator || st.LeaseRemaining <= 0 {
				t.Fatalf("new coordinator %s during f's stall: %v, lease %v", g, st.Role, st.LeaseRemaining)
			}
			time.Sleep(10 * time.Millisecond) // fake time: one sample per tick
		}
		if !sawLeader {
			t.Errorf("f never saw the new coordinator %d as leader during its stall", gid)
		}
		if hs, _ := c.member(f).st.Durable(); hs.Promised != durableBefore.Promised {
			t.Fatalf("f's durable promise moved during its stall: %v -> %v", durableBefore.Promised, hs.Promised)
		}
		stores[f].release()

		want := appendMany(ctx, t, gn, 2, 3, "after")
		for _, addr := range c.masters {
			es := readAll(ctx, t, c.member(addr).node, maxPos(want), 1)
			checkEntries(t, addr, es, map[paxos.Position]string{maxPos(want): want[maxPos(want)]})
		}
		c.checkPersistBeforeSend(t)
	})
}

// A save that fails while the driver steps heartbeats stops the node with
// that error (wrapped); Close returns and the rest of the cluster goes on.
func TestReviewSaveErrorDuringStallStopsTheNode(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c, stores := reviewCluster(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a, f := c.masters[0], c.masters[1]
		c.elect(ctx, a)
		an := c.member(a).node
		appendMany(ctx, t, an, 1, 3, "before")

		errDisk := errors.New("disk on fire")
		stalled := stores[f].arm(errDisk)
		appendMany(ctx, t, an, 1, 1, "stall")
		<-stalled
		time.Sleep(2 * masterLease) // fake time: heartbeats are stepped meanwhile
		stores[f].release()

		m := c.member(f)
		select {
		case err := <-m.errc:
			if !errors.Is(err, errDisk) {
				t.Errorf("Run(%s) = %v, want an error wrapping %v", f, err, errDisk)
			}
			m.errc <- nil // for stopAll's and stop's sake
		case <-time.After(time.Second):
			t.Fatalf("Run(%s) still running a second after its save failed", f)
		}
		if err := m.node.Err(); !errors.Is(err, errDisk) {
			t.Errorf("Err() = %v, want %v", err, errDisk)
		}
		if _, err := m.node.Append(ctx, []byte("x")); err == nil {
			t.Errorf("Append on a stopped node succeeded")
		}
		want := appendMany(ctx, t, an, 1, 3, "after")
		readAll(ctx, t, c.member(c.masters[2]).node, maxPos(want), 1)
		c.checkPersistBeforeSend(t)
	})
}

// Close while a save is in flight waits for that save (the store must not
// be closed under it), then Run returns nil.
func TestReviewCloseDuringStallWaitsForTheSave(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c, stores := reviewCluster(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a, f := c.masters[0], c.masters[1]
		c.elect(ctx, a)
		an := c.member(a).node
		appendMany(ctx, t, an, 1, 3, "before")
		stalled := stores[f].arm(nil)
		appendMany(ctx, t, an, 1, 1, "stall")
		<-stalled

		m := c.member(f)
		closed := make(chan struct{})
		go func() {
			m.node.Close()
			close(closed)
		}()
		synctest.Wait()
		select {
		case <-closed:
			t.Fatal("Close returned while a save was in flight")
		default:
		}
		stores[f].release()
		select {
		case <-closed:
		case <-time.After(time.Second):
			t.Fatal("Close did not return a second after the save finished")
		}
		if err := <-m.errc; err != nil {
			t.Errorf("Run(%s) = %v after Close, want nil", f, err)
		}
		m.errc <- nil
	})
}

// With a steady write load and saves that take a few milliseconds on a
// follower (a busy disk), messages arrive during every save and wait in
// deferred; loop steps them and saves again before it selects, so it may
// never get back to its select while the load lasts. The driver must still serve its other work: control
// calls (Demote, Elect, membership changes; here a no-op probe) and Close
// must not wait for the load to stop.
func TestReviewDriverServesControlUnderLoadWithSlowSaves(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c, stores := reviewCluster(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a, f := c.masters[0], c.masters[1]
		c.elect(ctx, a)
		an := c.member(a).node
		appendMany(ctx, t, an, 1, 3, "before")
		stores[f].delay.Store(int64(2 * time.Millisecond))

		wctx, wcancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for wctx.Err() == nil {
					if _, err := an.Append(wctx, []byte("load")); err != nil {
						return
					}
					time.Sleep(time.Millisecond) // fake time: pace the writers
				}
			})
		}
		time.Sleep(50 * time.Millisecond) // fake time: the load runs

		fn := c.member(f).node
		for _, tc := range []struct {
			who string
			n   *replog.Node
		}{{"follower " + f, fn}, {"leader " + a, an}} {
			pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
			start := time.Now()
			err := tc.n.StallForTest(pctx, 0)
			pcancel()
			if err != nil {
				t.Errorf("control call on the %s under load: %v after %v", tc.who, err, time.Since(start))
			}
		}
		closed := make(chan struct{})
		go func() {
			fn.Close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(300 * time.Millisecond):
			t.Errorf("Close on follower %s did not return within 300ms under load", f)
		}
		wcancel()
		wg.Wait()
		<-closed
	})
}

// Status documents LearnedTo as one past the last position learned "(and
// published)" in order. While a save is in flight the driver refreshes the
// status (takeWhileSaving), so it must not report positions whose Ready is
// still being saved and not yet published: a caller that reads up to
// Status().LearnedTo must find the entries there.
func TestReviewStatusLearnedToIsPublishedDuringSlowSaves(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		c, stores := reviewCluster(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		a, f := c.masters[0], c.masters[1]
		c.elect(ctx, a)
		an := c.member(a).node
		first := maxPos(appendMany(ctx, t, an, 1, 3, "before")) + 1 // appends only from here on
		fn := c.member(f).node
		readAll(ctx, t, fn, first-1, 1)

		canceled, cancelNow := context.WithCancel(context.Background())
		cancelNow()
		var mu sync.Mutex
		var bad []string
		var checks atomic.Int64
		fn.SetOnStatusForTest(func(s replog.Status) {
			if s.LearnedTo <= first {
				return
			}
			checks.Add(1)
			// Driver goroutine: nothing is published meanwhile.
			if _, err := fn.Read(canceled, s.LearnedTo-1); err != nil {
				mu.Lock()
				if len(bad) < 3 {
					bad = append(bad, fmt.Sprintf("status LearnedTo %d, Read(%d): %v", s.LearnedTo, s.LearnedTo-1, err))
				}
				mu.Unlock()
			}
		})
		stores[f].delay.Store(int64(20 * time.Millisecond))
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for range 50 {
					if _, err := an.Append(ctx, []byte("load")); err != nil {
						t.Errorf("Append: %v", err)
						return
					}
					time.Sleep(time.Millisecond) // fake time: pace the writers
				}
			})
		}
		wg.Wait()
		time.Sleep(masterLease) // fake time: f catches up
		stores[f].delay.Store(0)
		fn.SetOnStatusForTest(func(replog.Status) {})
		mu.Lock()
		defer mu.Unlock()
		if checks.Load() == 0 {
			t.Fatal("no status past the first appends was checked")
		}
		if len(bad) > 0 {
			t.Errorf("follower %s reported positions learned before publishing them:\n%s", f, strings.Join(bad, "\n"))
		}
	})
}
