package replog_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/replogtest"
)

// cluster is a set of nodes over memory stores and the memory network. It
// must be built inside a synctest bubble.
type cluster struct {
	t       *testing.T
	net     *replogtest.Network
	masters []string
	quorum  int
	mu      sync.Mutex
	members map[string]*member
	// violations found by the persist-before-send check
	violations []string
	// wrap, if set before a member starts, wraps its store (a slow disk).
	wrap func(addr string, st *replogtest.Storage) replog.Storage
	// tune, if set before a member starts, adjusts its configuration.
	tune func(cfg *replog.Config)
}

// checkPersistBeforeSend fails t if any message left before the save it
// depends on was durable.
func (c *cluster) checkPersistBeforeSend(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	violations := c.violations
	c.mu.Unlock()
	if len(violations) > 0 {
		t.Errorf("persist-before-send violated:\n%v", violations)
	}
}

type member struct {
	addr string
	st   *replogtest.Storage
	node *replog.Node
	tr   *replogtest.Transport
	errc chan error
}

func newCluster(t *testing.T, n int) *cluster {
	return newClusterWith(t, n, nil, nil)
}

// newClusterWith is newCluster with every member's store wrapped by wrap and
// its configuration adjusted by tune (either may be nil).
func newClusterWith(t *testing.T, n int, wrap func(string, *replogtest.Storage) replog.Storage, tune func(*replog.Config)) *cluster {
	c := &cluster{t: t, net: replogtest.NewNetwork(1), quorum: n/2 + 1, members: map[string]*member{}, wrap: wrap, tune: tune}
	for i := range n {
		c.masters = append(c.masters, fmt.Sprintf("10.0.0.%d:5051", i+1))
	}
	c.net.SetFilter(c.checkDurable)
	for _, addr := range c.masters {
		c.start(addr, replogtest.NewStorage())
	}
	t.Cleanup(c.stopAll)
	return c
}

func (c *cluster) config(addr string, seed int64) replog.Config {
	return replog.Config{
		Logger:         hclog.New(&hclog.LoggerOptions{Name: addr, Level: hclog.Warn, Output: testWriter{c.t}}),
		Addr:           addr,
		Masters:        c.masters,
		Quorum:         c.quorum,
		AutoInitialize: true,
		Rand:           rand.New(rand.NewSource(seed)),
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(string(b))
	return len(b), nil
}

func (c *cluster) start(addr string, st *replogtest.Storage) *member {
	c.t.Helper()
	cfg := c.config(addr, int64(len(addr)))
	if c.tune != nil {
		c.tune(&cfg)
	}
	var store replog.Storage = st
	if c.wrap != nil {
		store = c.wrap(addr, st)
	}
	n, err := replog.New(cfg, store)
	if err != nil {
		c.t.Fatalf("New(%s): %v", addr, err)
	}
	m := &member{addr: addr, st: st, node: n, errc: make(chan error, 1)}
	m.tr = c.net.Join(addr, n.ID, n.Step)
	c.mu.Lock()
	c.members[addr] = m
	c.mu.Unlock()
	go func() { m.errc <- n.Run(context.Background(), m.tr) }()
	return m
}

func (c *cluster) member(addr string) *member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.members[addr]
}

// stop closes a member's node and transport.
func (c *cluster) stop(addr string) *member {
	m := c.member(addr)
	m.tr.Close()
	m.node.Close()
	if err := <-m.errc; err != nil {
		c.t.Errorf("Run(%s) = %v", addr, err)
	}
	m.errc <- nil
	return m
}

func (c *cluster) stopAll() {
	for _, addr := range c.masters {
		m := c.member(addr)
		m.tr.Close()
		m.node.Close()
	}
}

// checkDurable is the network filter: every accepting promise or write
// response must be backed by what its sender had synced when it was sent.
func (c *cluster) checkDurable(from, _ string, msg paxos.Message) bool {
	c.mu.Lock()
	m := c.members[from]
	c.mu.Unlock()
	if m == nil || msg.Result != paxos.ResultAccept {
		return true
	}
	if len(c.violations) >= 5 {
		return true // enough to tell
	}
	hs, actions := m.st.Durable()
	switch {
	case msg.Type == paxos.MsgPromiseResponse && msg.Implicit:
		if hs.Promised.Less(msg.Proposal) {
			c.violations = append(c.violations, fmt.Sprintf("%s promised %v before syncing it (durable %v)", from, msg.Proposal, hs.Promised))
		}
	case msg.Type == paxos.MsgHeartbeatResponse:
		// Accepting a heartbeat promises its proposal: the promise, and the
		// VOTING status the answer reports, must be durable.
		if hs.Promised.Less(msg.Proposal) || hs.Status != paxos.StatusVoting {
			c.violations = append(c.violations, fmt.Sprintf("%s accepted heartbeat of %v before syncing it (durable %v, %v)", from, msg.Proposal, hs.Promised, hs.Status))
		}
	case msg.Type == paxos.MsgWriteResponse:
		for p := max(msg.Position, hs.Begin); p < msg.End; p++ {
			i := slices.IndexFunc(actions, func(a paxos.Action) bool { return a.Position == p })
			learned := i >= 0 && (actions[i].Learned || p < hs.LearnedTo)
			if i < 0 || (!learned && actions[i].Performed.Less(msg.Proposal)) {
				c.violations = append(c.violations, fmt.Sprintf("%s accepted position %d under %v before syncing it", from, p, msg.Proposal))
			}
		}
	}
	return true
}

// elect makes the member at addr the coordinator, retrying while the log
// initialises.
func (c *cluster) elect(ctx context.Context, addr string) paxos.Position {
	c.t.Helper()
	var lastErr error
	for range 200 {
		last, err := c.member(addr).node.Elect(ctx)
		if err == nil {
			return last
		}
		lastErr = err
		if !errors.Is(err, replog.ErrNotLeader) {
			c.t.Fatalf("Elect(%s): %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond) // fake time: let the log initialise or a lease expire
	}
	c.t.Fatalf("Elect(%s) never succeeded: %v", addr, lastErr)
	return 0
}

// readAll reads entries from a member until it has want of them.
func readAll(ctx context.Context, t *testing.T, n *replog.Node, from paxos.Position, want int) []replog.Entry {
	t.Helper()
	var out []replog.Entry
	for len(out) < want {
		es, err := n.Read(ctx, from)
		if err != nil {
			t.Fatalf("Read(%d) after %d entries: %v", from, len(out), err)
		}
		out = append(out, es...)
		from = es[len(es)-1].Position + 1
	}
	return out
}

func appendMany(ctx context.Context, t *testing.T, n *replog.Node, writers, each int, prefix string) map[paxos.Position]string {
	t.Helper()
	var mu sync.Mutex
	got := map[paxos.Position]string{}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				data := fmt.Sprintf("%s-%d-%d", prefix, w, i)
				p, err := n.Append(ctx, []byte(data))
				if err != nil {
					t.Errorf("Append(%q): %v", data, err)
					return
				}
				mu.Lock()
				if old, dup := got[p]; dup {
					t.Errorf("position %d returned for %q and %q", p, old, data)
				}
				got[p] = data
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return got
}

func checkEntries(t *testing.T, who string, es []replog.Entry, want map[paxos.Position]string) {
	t.Helper()
	seen := 0
	for _, e := range es {
		if d, ok := want[e.Position]; ok {
			seen++
			if string(e.Data) != d {
				t.Errorf("%s: position %d holds %q, want %q", who, e.Position, e.Data, d)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("%s: read %d of the %d appended entries", who, seen, len(want))
	}
}

// checkDurableAppends checks that every appended position is accepted or
// learned in what a crash of st now would keep.
func checkDurableAppends(t *testing.T, who string, st *replogtest.Storage, want map[paxos.Position]string) {
	t.Helper()
	_, actions := st.Durable()
	durable := map[paxos.Position]paxos.Action{}
	for _, a := range actions {
		durable[a.Position] = a
	}
	for p, d := range want {
		if a, ok := durable[p]; !ok || string(a.Entry.Data) != d || (a.Performed.IsZero() && !a.Learned) {
			t.Errorf("%s: append %q at position %d returned, but a crash now would keep %+v (found %v)", who, d, p, a, ok)
		}
	}
}

func TestNodeSingleReplica(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		addr := c.masters[0]
		last := c.elect(ctx, addr)
		n := c.member(addr).node
		want := appendMany(ctx, t, n, 4, 10, "x")
		checkEntries(t, addr, readAll(ctx, t, n, last+1, len(want)), want)
		// With a quorum of one the accept and the learned mark share a
		// batch, which must be synced: every append that returned survives
		// a crash now.
		checkDurableAppends(t, addr, c.member(addr).st, want)
		st := n.Status()
		if st.Role != paxos.RoleCoordinator || st.ReplicaStatus != paxos.StatusVoting || st.LeaseRemaining <= 0 {
			t.Errorf("Status = role %v, status %v, lease %v; want coordinator, voting, a lease", st.Role, st.ReplicaStatus, st.LeaseRemaining)
		}
	})
}

func TestNodeClusterAppendPersistsBeforeSend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		leader := c.masters[0]
		last := c.elect(ctx, leader)
		want := appendMany(ctx, t, c.member(leader).node, 16, 8, "a")
		for _, addr := range c.masters {
			checkEntries(t, addr, readAll(ctx, t, c.member(addr).node, last+1, len(want)), want)
		}
		c.checkPersistBeforeSend(t)
		// Batching: far fewer synced saves on the leader than appends.
		saves := c.member(leader).st.Saves()
		if len(saves) > 3*len(want) {
			t.Errorf("leader made %d saves for %d appends", len(saves), len(want))
		}
		// The leader's accepts are synced before its writes go out; the
		// learned marks that follow a quorum's answers are not synced on
		// their own (they are saved unsynced, or ride along with the next
		// appends' synced batch).
		checkDurableAppends(t, leader, c.member(leader).st, want)
		var hs *paxos.HardState // the last one saved
		for _, s := range saves {
			// Learned marks are learned actions and a hard state that
			// moves only the learned watermark.
			watermarkOnly := s.Batch.HardState == nil ||
				hs != nil && sameButLearnedTo(*hs, *s.Batch.HardState)
			if s.Batch.Sync && watermarkOnly && (len(s.Batch.Actions) > 0 || s.Batch.HardState != nil) &&
				!slices.ContainsFunc(s.Batch.Actions, func(a paxos.Action) bool { return !a.Learned }) {
				t.Errorf("leader synced a batch of learned marks alone: %+v", s.Batch)
			}
			if s.Batch.HardState != nil {
				hs = s.Batch.HardState
			}
		}
		if st := c.member(leader).node.Status(); st.Voters != 3 || st.Quorum != 2 || st.Reachable != 3 {
			t.Errorf("Status voters/quorum/reachable = %d/%d/%d, want 3/2/3", st.Voters, st.Quorum, st.Reachable)
		}
		// A follower refuses writes.
		if _, err := c.member(c.masters[1]).node.Append(ctx, []byte("no")); !errors.Is(err, replog.ErrNotLeader) {
			t.Errorf("Append on a follower = %v, want ErrNotLeader", err)
		}
	})
}

// sameButLearnedTo reports whether a and b differ at most in LearnedTo.
func sameButLearnedTo(a, b paxos.HardState) bool {
	a.LearnedTo, b.LearnedTo = 0, 0
	return cmp.Equal(a, b)
}

func TestNodeCrashRestartCatchesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		leader, victim := c.masters[0], c.masters[2]
		last := c.elect(ctx, leader)
		want := appendMany(ctx, t, c.member(leader).node, 4, 5, "before")
		crashed := c.stop(victim).st.Crash()
		more := appendMany(ctx, t, c.member(leader).node, 4, 5, "during")
		m := c.start(victim, crashed)
		after := appendMany(ctx, t, c.member(leader).node, 2, 5, "after")
		for p, d := range more {
			want[p] = d
		}
		for p, d := range after {
			want[p] = d
		}
		checkEntries(t, victim, readAll(ctx, t, m.node, last+1, len(want)), want)
		c.checkPersistBeforeSend(t)
	})
}

func TestNodeWipedReplicaRejoins(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		leader, victim := c.masters[0], c.masters[2]
		last := c.elect(ctx, leader)
		want := appendMany(ctx, t, c.member(leader).node, 2, 5, "before")
		oldID := c.stop(victim).node.ID()
		m := c.start(victim, replogtest.NewStorage()) // the guide's "replace a master"
		if m.node.ID() == oldID {
			t.Fatalf("a wiped replica kept its ReplicaID %d", oldID)
		}
		after := appendMany(ctx, t, c.member(leader).node, 2, 5, "after")
		for p, d := range after {
			want[p] = d
		}
		// The coordinator replaces the old member by the new one, a voter
		// once caught up.
		for range 600 {
			ms := c.member(leader).node.Status().Membership
			if slices.ContainsFunc(ms.Members, func(x paxos.Member) bool { return x.ID == m.node.ID() && x.Voter }) &&
				!slices.ContainsFunc(ms.Members, func(x paxos.Member) bool { return x.ID == oldID }) {
				break
			}
			time.Sleep(100 * time.Millisecond) // fake time
		}
		ms := c.member(leader).node.Status().Membership
		if !slices.ContainsFunc(ms.Members, func(x paxos.Member) bool { return x.ID == m.node.ID() && x.Voter }) ||
			slices.ContainsFunc(ms.Members, func(x paxos.Member) bool { return x.ID == oldID }) {
			t.Fatalf("membership = %+v; want %d replaced by voter %d", ms, oldID, m.node.ID())
		}
		checkEntries(t, victim, readAll(ctx, t, m.node, last+1, len(want)), want)
	})
}

func TestNodePartitionedLeaderLosesLeadership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		old, next := c.masters[0], c.masters[1]
		c.elect(ctx, old)
		appendMany(ctx, t, c.member(old).node, 1, 3, "before")
		c.net.Partition([]string{old})

		// The cut-off leader cannot get a write learned, and its lease runs
		// out.
		actx, acancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := c.member(old).node.Append(actx, []byte("lost"))
		acancel()
		if err == nil {
			t.Fatalf("Append on a partitioned leader succeeded")
		}
		if lease := c.member(old).node.Status().LeaseRemaining; lease > 0 {
			t.Errorf("partitioned leader still reports a lease of %v", lease)
		}
		// The majority elects a new leader and keeps writing.
		c.elect(ctx, next)
		want := appendMany(ctx, t, c.member(next).node, 2, 3, "after")
		c.net.Heal()
		for range 100 {
			if c.member(old).node.Status().LearnedTo > maxPos(want) {
				break
			}
			time.Sleep(100 * time.Millisecond) // fake time
		}
		if got := c.member(old).node.Status().LearnedTo; got <= maxPos(want) {
			t.Errorf("old leader learned to %d after healing, want past %d", got, maxPos(want))
		}
		if _, err := c.member(old).node.Append(ctx, []byte("stale")); !errors.Is(err, replog.ErrNotLeader) && !errors.Is(err, replog.ErrLostLeadership) {
			t.Errorf("Append on the old leader after healing = %v, want ErrNotLeader or ErrLostLeadership", err)
		}
		c.checkPersistBeforeSend(t)
	})
}

func maxPos(m map[paxos.Position]string) paxos.Position {
	var p paxos.Position
	for q := range m {
		p = max(p, q)
	}
	return p
}

func TestNodeStorageErrorIsFatal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		addr := c.masters[0]
		c.elect(ctx, addr)
		m := c.member(addr)
		boom := errors.New("disk on fire")
		m.st.FailNextSave(boom)
		if _, err := m.node.Append(ctx, []byte("x")); !errors.Is(err, boom) {
			t.Errorf("Append when the store fails = %v, want %v", err, boom)
		}
		if err := <-m.errc; !errors.Is(err, boom) {
			t.Errorf("Run = %v, want %v", err, boom)
		}
		m.errc <- nil
		if err := m.node.Err(); !errors.Is(err, boom) {
			t.Errorf("Err = %v, want %v", err, boom)
		}
		if _, err := m.node.Append(ctx, []byte("y")); !errors.Is(err, boom) {
			t.Errorf("Append after the fatal error = %v, want %v", err, boom)
		}
	})
}

func TestNodeClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		addr := c.masters[0]
		c.elect(ctx, addr)
		n := c.member(addr).node
		readErr := make(chan error, 1)
		go func() {
			_, err := n.Read(ctx, 1000)
			readErr <- err
		}()
		synctest.Wait()
		for range 2 {
			if err := n.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
		if err := <-readErr; !errors.Is(err, replog.ErrClosed) {
			t.Errorf("blocked Read after Close = %v, want ErrClosed", err)
		}
		if _, err := n.Append(ctx, []byte("x")); !errors.Is(err, replog.ErrClosed) {
			t.Errorf("Append after Close = %v, want ErrClosed", err)
		}
		if _, err := n.Elect(ctx); !errors.Is(err, replog.ErrClosed) {
			t.Errorf("Elect after Close = %v, want ErrClosed", err)
		}
	})
}

func TestNodeAppendContextCancelsOnlyTheWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		addr := c.masters[0]
		last := c.elect(ctx, addr)
		n := c.member(addr).node
		dead, kill := context.WithCancel(ctx)
		kill()
		if _, err := n.Append(dead, []byte("x")); !errors.Is(err, context.Canceled) {
			t.Errorf("Append with a cancelled ctx = %v, want context.Canceled", err)
		}
		p, err := n.Append(ctx, []byte("y"))
		if err != nil {
			t.Fatalf("Append after a cancelled one: %v", err)
		}
		es := readAll(ctx, t, n, last+1, 1)
		if es[len(es)-1].Position > p || string(es[len(es)-1].Data) == "" {
			t.Errorf("Read = %+v", es)
		}
	})
}

func TestNodeStepDropsWhenInboxFull(t *testing.T) {
	t.Parallel()
	st := replogtest.NewStorage()
	n, err := replog.New(replog.Config{Addr: "a:1", Masters: []string{"a:1"}, Quorum: 1, InboxSize: 2}, st)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		n.Step(paxos.Message{Type: paxos.MsgHeartbeat, From: 9})
	}
	if got := n.Status().InboxDropped; got != 3 {
		t.Errorf("InboxDropped = %d, want 3", got)
	}
}

func TestNodeStepDropsPastInboxBytes(t *testing.T) {
	t.Parallel()
	n, err := replog.New(replog.Config{Addr: "a:1", Masters: []string{"a:1"}, Quorum: 1, InboxBytes: 1000}, replogtest.NewStorage())
	if err != nil {
		t.Fatal(err)
	}
	big := func(size int) paxos.Message {
		return paxos.Message{Type: paxos.MsgCatchupResponse, From: 9, Actions: []paxos.Action{{Entry: paxos.Entry{Data: make([]byte, size)}}}}
	}
	n.Step(big(5000))                                        // one message always gets in, however large
	n.Step(big(10))                                          // over the bound: dropped
	n.Step(paxos.Message{Type: paxos.MsgHeartbeat, From: 9}) // no entries: only the count bounds it
	if got := n.Status().InboxDropped; got != 1 {
		t.Errorf("InboxDropped = %d, want 1", got)
	}
}

func TestNodeAllow(t *testing.T) {
	t.Parallel()
	n, err := replog.New(replog.Config{Addr: "a:1", Masters: []string{"a:1", "b:1", "c:1"}, Quorum: 2}, replogtest.NewStorage())
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Allow(0, 5, "b:1"); err != nil {
		t.Errorf("Allow(listed) = %v", err)
	}
	if err := n.Allow(0, 5, "d:1"); err == nil {
		t.Errorf("Allow(unlisted) = nil, want a refusal")
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  replog.Config
		ok   bool
	}{
		{"good", replog.Config{Addr: "a", Masters: []string{"a", "b", "c"}, Quorum: 2}, true},
		{"no addr", replog.Config{Masters: []string{"a"}, Quorum: 1}, false},
		{"addr not listed", replog.Config{Addr: "z", Masters: []string{"a"}, Quorum: 1}, false},
		{"no quorum", replog.Config{Addr: "a", Masters: []string{"a"}}, false},
		{"too many masters", replog.Config{Addr: "a", Masters: []string{"a", "b", "c", "d"}, Quorum: 2}, false},
		{"negative window", replog.Config{Addr: "a", Masters: []string{"a"}, Quorum: 1, Window: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate(%+v) = %v, want ok=%t", tt.cfg, err, tt.ok)
			}
		})
	}
}

func TestNodeTruncateAndSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		leader, victim := c.masters[0], c.masters[2]
		last := c.elect(ctx, leader)
		ln := c.member(leader).node
		appendMany(ctx, t, ln, 1, 5, "old")
		// The victim is away while the log is truncated under it.
		c.stop(victim)
		snap, err := ln.AppendSnapshot(ctx, []byte("state"))
		if err != nil {
			t.Fatalf("AppendSnapshot: %v", err)
		}
		if err := ln.Truncate(ctx, snap); err != nil {
			t.Fatalf("Truncate(%d): %v", snap, err)
		}
		p, err := ln.Append(ctx, []byte("new"))
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		for range 100 {
			if ln.Status().Begin == snap {
				break
			}
			time.Sleep(100 * time.Millisecond) // fake time
		}
		if got := ln.Status().Begin; got != snap {
			t.Fatalf("leader's Begin = %d after truncating to %d", got, snap)
		}
		if as, err := c.member(leader).st.Actions(0, snap, 0); err != nil || len(as) != 0 {
			t.Errorf("leader still stores %d actions below %d (err %v)", len(as), snap, err)
		}
		// A reader from before the truncation gets the snapshot first.
		es := readAll(ctx, t, ln, last+1, 2)
		if es[0].Position != snap || es[0].Type != paxos.EntrySnapshot || string(es[0].Data) != "state" {
			t.Errorf("first entry read from %d = %+v, want the snapshot at %d", last+1, es[0], snap)
		}
		// The victim, back with its old store, catches up past the
		// truncation and sees the same.
		m := c.start(victim, c.member(victim).st.Crash())
		var got []string
		for from := paxos.Position(0); from <= p; {
			es, err := m.node.Read(ctx, from)
			if err != nil {
				t.Fatalf("victim Read(%d): %v", from, err)
			}
			for _, e := range es {
				if e.Position >= snap {
					got = append(got, fmt.Sprintf("%d:%s", e.Position, e.Data))
				}
			}
			from = es[len(es)-1].Position + 1
		}
		want := []string{fmt.Sprintf("%d:state", snap), fmt.Sprintf("%d:new", p)}
		if !slices.Equal(got, want) {
			t.Errorf("victim read %v from the snapshot on, want %v", got, want)
		}
	})
}

func TestNodeReadsBackFromStorage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		addr := c.masters[0]
		last := c.elect(ctx, addr)
		n := c.member(addr).node
		want := appendMany(ctx, t, n, 1, 20, "x")
		// Reading far ahead drops everything from memory...
		rctx, rcancel := context.WithTimeout(ctx, time.Second)
		if _, err := n.Read(rctx, last+1000); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Read past the end = %v, want a deadline", err)
		}
		rcancel()
		// ... so reading from the start again comes from storage.
		checkEntries(t, addr, readAll(ctx, t, n, last+1, len(want)), want)

		// After a restart with Applied set, entries below it are not
		// published again but can still be read.
		st := c.stop(addr).st.Crash()
		cfg := c.config(addr, 2)
		cfg.Applied = last + 11
		n2, err := replog.New(cfg, st)
		if err != nil {
			t.Fatal(err)
		}
		tr := c.net.Join(addr, n2.ID, n2.Step)
		errc := make(chan error, 1)
		go func() { errc <- n2.Run(context.Background(), tr) }()
		defer func() {
			n2.Close()
			if err := <-errc; err != nil {
				t.Errorf("Run: %v", err)
			}
		}()
		// The crash lost the learned marks (saved without a sync) but not
		// the accepts: the replica's own election learns them again.
		for i := 0; ; i++ {
			_, err := n2.Elect(ctx)
			if err == nil {
				break
			}
			if !errors.Is(err, replog.ErrNotLeader) || i == 200 {
				t.Fatalf("Elect after the restart: %v", err)
			}
			time.Sleep(100 * time.Millisecond) // fake time: let a lease expire
		}
		checkEntries(t, addr+" restarted", readAll(ctx, t, n2, last+1, len(want)), want)
	})
}

func TestNodeElectRefusedWhileLeaseLive(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c.elect(ctx, c.masters[0])
		appendMany(ctx, t, c.member(c.masters[0]).node, 1, 2, "x")
		_, err := c.member(c.masters[1]).node.Elect(ctx)
		if !errors.Is(err, replog.ErrNotLeader) {
			t.Errorf("Elect on a follower under a live lease = %v, want ErrNotLeader", err)
		}
		st := c.member(c.masters[1]).node.Status()
		if st.Leader != c.member(c.masters[0]).node.ID() || st.LeaderAddr != c.masters[0] {
			t.Errorf("follower's known leader = %d at %q, want %d at %q", st.Leader, st.LeaderAddr, c.member(c.masters[0]).node.ID(), c.masters[0])
		}
		// The leader keeps its role and can still write.
		if _, err := c.member(c.masters[0]).node.Append(ctx, []byte("y")); err != nil {
			t.Errorf("Append on the leader after a refused campaign: %v", err)
		}
	})
}

func TestNodeAppendUnderMessageLoss(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		leader := c.masters[0]
		last := c.elect(ctx, leader)
		c.net.SetDropRate(0.2)
		want := appendMany(ctx, t, c.member(leader).node, 32, 10, "lossy")
		c.net.SetDropRate(0)
		for _, addr := range c.masters {
			checkEntries(t, addr, readAll(ctx, t, c.member(addr).node, last+1, len(want)), want)
		}
		c.checkPersistBeforeSend(t)
	})
}

func TestNodeDemoteFailsAppendsInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		leader := c.masters[0]
		c.elect(ctx, leader)
		n := c.member(leader).node
		c.net.Partition([]string{leader}) // nothing can be learned now
		errc := make(chan error, 1)
		go func() {
			_, err := n.Append(ctx, []byte("stuck"))
			errc <- err
		}()
		synctest.Wait() // the append is in flight
		n.Demote()
		if err := <-errc; !errors.Is(err, replog.ErrLostLeadership) {
			t.Errorf("Append in flight at Demote = %v, want ErrLostLeadership", err)
		}
		if role := n.Status().Role; role != paxos.RoleFollower {
			t.Errorf("role after Demote = %v, want follower", role)
		}
		if _, err := n.Append(ctx, []byte("x")); !errors.Is(err, replog.ErrNotLeader) {
			t.Errorf("Append after Demote = %v, want ErrNotLeader", err)
		}
	})
}

// Found in review: the driver's ticker drops ticks while the driver is
// blocked, and the lease is counted in ticks, so a leader whose driver
// stalled past its lease (a slow disk, a long pause) went on reporting most
// of a lease while the others, on time, could already have elected someone
// else. Logical time must catch up with real time.
func TestNodeLeaseCountsStalledTime(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		leader := c.masters[0]
		c.elect(ctx, leader)
		appendMany(ctx, t, c.member(leader).node, 1, 3, "before")
		n := c.member(leader).node
		if n.Status().LeaseRemaining <= 0 {
			t.Fatalf("the leader holds no lease before the stall")
		}
		// Cut the leader off, so nothing renews its lease, and stall its
		// driver for twice the lease.
		c.net.Partition([]string{leader})
		lease := time.Duration(replog.DefaultLeaseTicks) * replog.DefaultTickInterval
		if err := n.StallForTest(ctx, 2*lease); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := n.Status().LeaseRemaining; got > 0 {
			t.Errorf("after a stall of %v the leader reports a lease of %v, want none", 2*lease, got)
		}
		c.net.Heal()
	})
}
