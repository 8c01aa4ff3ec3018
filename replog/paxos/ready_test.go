package paxos

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// singleCore returns replica 1 elected coordinator of a log whose only voter
// it is (quorum 1).
func singleCore(t *testing.T) (*Core, *memStore) {
	t.Helper()
	s := votingStore(1, Proposal{}, testMembership(1))
	cfg := testConfig(1)
	cfg.Quorum = 1
	c := newTestCore(t, cfg, s)
	if err := c.Campaign(); err != nil {
		t.Fatal(err)
	}
	drain(t, c, s)
	if c.Status().Role != RoleCoordinator {
		t.Fatalf("not elected: %+v", c.Status())
	}
	return c, s
}

// readySummary is what TestReadyMustSync compares.
type readySummary struct {
	MustSync      bool
	HardState     bool
	LearnedToOnly bool // the hard state holds only a new learned watermark
	Actions       []Position
	Learned       []Position
	TruncateBelow Position
	Early         []ReplicaID // recipients of the messages that may leave before the save
}

func summarize(rd Ready) readySummary {
	s := readySummary{MustSync: rd.MustSync, HardState: rd.HardState != nil, LearnedToOnly: rd.LearnedToOnly, TruncateBelow: rd.TruncateBelow}
	for _, a := range rd.Actions {
		s.Actions = append(s.Actions, a.Position)
	}
	for _, a := range rd.Learned {
		s.Learned = append(s.Learned, a.Position)
	}
	for _, m := range rd.Early {
		s.Early = append(s.Early, m.To)
	}
	return s
}

func learnedAt(p Position, e Entry) Action {
	prop := Proposal{2, 2}
	return Action{Position: p, Promised: prop, Performed: prop, Learned: true, Entry: e}
}

// TestReadyMustSync checks the rule of Ready.MustSync: a batch holding a
// vote (a promise or an accept, the local replica's own included) or a
// HardState change other than Begin must be synced before its messages leave
// and its learned entries are published; a batch of learned marks and
// truncations alone need not be. It also checks Ready.Early: only the
// coordinator's write requests may leave before the batch is saved, and its
// own accept counts only after Advance (the next Ready).
func TestReadyMustSync(t *testing.T) {
	t.Parallel()
	follower := func(t *testing.T) (*Core, *memStore) {
		s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
		return newTestCore(t, testConfig(1), s), s
	}
	from2 := func(m Message) func(*testing.T, *Core, *memStore) {
		return func(t *testing.T, c *Core, _ *memStore) {
			m.From, m.To, m.Cluster = 2, 1, testCluster
			if err := c.Step(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	prop := Proposal{5, 2}
	cfg2 := testMembership(1, 2)
	tests := []struct {
		name  string
		setup func(*testing.T) (*Core, *memStore)
		act   func(*testing.T, *Core, *memStore)
		want  readySummary
		next  *readySummary // the Ready after Advance, if any
	}{
		{
			name:  "a new replica's identity",
			setup: func(*testing.T) (*Core, *memStore) { return nil, nil },
			want:  readySummary{MustSync: true, HardState: true},
		},
		{
			name:  "implicit promise raised",
			setup: follower,
			act:   from2(Message{Type: MsgPromiseRequest, Proposal: prop, Implicit: true}),
			want:  readySummary{MustSync: true, HardState: true},
		},
		{
			name:  "explicit promise stored at positions",
			setup: follower,
			act:   from2(Message{Type: MsgPromiseRequest, Proposal: prop, Position: 1, End: 3}),
			want:  readySummary{MustSync: true, Actions: []Position{1, 2}},
		},
		{
			name:  "write accepted",
			setup: follower,
			act:   from2(Message{Type: MsgWriteRequest, Proposal: prop, Actions: []Action{appendAt(1, prop, "a")}}),
			want:  readySummary{MustSync: true, HardState: true, Actions: []Position{1}},
		},
		{
			name:  "heartbeat raises the implicit promise",
			setup: follower,
			act:   from2(Message{Type: MsgHeartbeat, Proposal: prop}),
			want:  readySummary{MustSync: true, HardState: true},
		},
		{
			name:  "learned broadcast",
			setup: follower,
			act: from2(Message{Type: MsgLearned, Proposal: prop, Actions: []Action{
				learnedAt(1, Entry{Type: EntryAppend, Data: []byte("a")}),
				learnedAt(2, Entry{Type: EntryAppend, Data: []byte("b")}),
			}}),
			want: readySummary{HardState: true, LearnedToOnly: true, Actions: []Position{1, 2}, Learned: []Position{1, 2}},
		},
		{
			name:  "catch-up batch",
			setup: follower,
			act: from2(Message{Type: MsgCatchupResponse, Result: ResultAccept, Status: StatusVoting, End: 2, Actions: []Action{
				learnedAt(1, Entry{Type: EntryAppend, Data: []byte("a")}),
			}}),
			want: readySummary{HardState: true, LearnedToOnly: true, Actions: []Position{1}, Learned: []Position{1}},
		},
		{
			name:  "learned truncation",
			setup: follower,
			act: from2(Message{Type: MsgLearned, Proposal: prop, Actions: []Action{
				learnedAt(1, Entry{Type: EntrySnapshot, Data: []byte("s")}),
				learnedAt(2, Entry{Type: EntryTruncate, To: 1}),
			}}),
			want: readySummary{HardState: true, Actions: []Position{1, 2}, Learned: []Position{1, 2}, TruncateBelow: 1},
		},
		{
			name:  "learned membership",
			setup: follower,
			act: from2(Message{Type: MsgLearned, Proposal: prop, Actions: []Action{
				learnedAt(1, Entry{Type: EntryConfig, Config: &cfg2}),
			}}),
			want: readySummary{MustSync: true, HardState: true, Actions: []Position{1}, Learned: []Position{1}},
		},
		{
			name:  "coordinator's own accept goes out with its write",
			setup: func(t *testing.T) (*Core, *memStore) { return electedCore(t, testMembership(1, 2, 3)) },
			act: func(t *testing.T, c *Core, _ *memStore) {
				if _, err := c.Propose([]Entry{{Type: EntryAppend, Data: []byte("a")}}); err != nil {
					t.Fatal(err)
				}
			},
			want: readySummary{MustSync: true, Actions: []Position{1}, Early: []ReplicaID{2, 3}},
		},
		{
			name: "coordinator's learned mark after a quorum answered",
			setup: func(t *testing.T) (*Core, *memStore) {
				c, s := electedCore(t, testMembership(1, 2, 3))
				if _, err := c.Propose([]Entry{{Type: EntryAppend, Data: []byte("a")}}); err != nil {
					t.Fatal(err)
				}
				drain(t, c, s)
				return c, s
			},
			act: func(t *testing.T, c *Core, _ *memStore) {
				if err := c.Step(Message{Type: MsgWriteResponse, From: 2, To: 1, Cluster: testCluster, Proposal: c.proposal, Position: 1, End: 2, Result: ResultAccept, Status: StatusVoting}); err != nil {
					t.Fatal(err)
				}
			},
			// Its stored accept holds the value: only the watermark moves.
			want: readySummary{HardState: true, LearnedToOnly: true, Learned: []Position{1}},
		},
		{
			// With a quorum of one the coordinator's own accept decides:
			// it counts once the synced batch holding it is saved, and the
			// learned mark follows in the next batch, without a sync.
			name:  "single replica accepts, then learns",
			setup: singleCore,
			act: func(t *testing.T, c *Core, _ *memStore) {
				if _, err := c.Propose([]Entry{{Type: EntryAppend, Data: []byte("a")}}); err != nil {
					t.Fatal(err)
				}
			},
			want: readySummary{MustSync: true, Actions: []Position{1}},
			next: &readySummary{HardState: true, LearnedToOnly: true, Learned: []Position{1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, s := tc.setup(t)
			if c == nil {
				var err error
				if c, err = New(testConfig(1), newMemStore()); err != nil {
					t.Fatal(err)
				}
			} else {
				tc.act(t, c, s)
			}
			rd := c.Ready()
			if diff := cmp.Diff(tc.want, summarize(rd)); diff != "" {
				t.Errorf("%s: Ready (-want +got):\n%s", tc.name, diff)
			}
			if tc.next == nil {
				return
			}
			if s != nil { // Advance promises the batch is saved
				s.save(rd)
				s.sync()
			}
			c.Advance(rd)
			if diff := cmp.Diff(*tc.next, summarize(c.Ready())); diff != "" {
				t.Errorf("%s: the Ready after Advance (-want +got):\n%s", tc.name, diff)
			}
		})
	}
}

// TestSingleReplicaAppendSurvivesCrash: with a quorum of one, an append that
// was published survives a crash right after (the batch holding its accept
// and learned mark was synced), and the replica learns it again.
func TestSingleReplicaAppendSurvivesCrash(t *testing.T) {
	t.Parallel()
	c, s := singleCore(t)
	first, err := c.Propose([]Entry{{Type: EntryAppend, Data: []byte("a")}})
	if err != nil {
		t.Fatal(err)
	}
	var published []Position
	for c.HasReady() {
		rd := c.Ready()
		s.save(rd)
		if rd.MustSync {
			s.sync()
		}
		for _, a := range rd.Learned {
			published = append(published, a.Position)
		}
		c.Advance(rd)
	}
	if diff := cmp.Diff([]Position{first}, published); diff != "" {
		t.Fatalf("published (-want +got):\n%s", diff)
	}
	s.crash(0)
	a, ok, _ := s.Action(first)
	if !ok || string(a.Entry.Data) != "a" {
		t.Fatalf("after a crash, position %d holds %+v (found %v), want the published append", first, a, ok)
	}
	cfg := testConfig(1)
	cfg.Quorum = 1
	c = newTestCore(t, cfg, s)
	if err := c.Campaign(); err != nil {
		t.Fatal(err)
	}
	drain(t, c, s)
	if got := c.Status().LearnedTo; got != first+1 {
		t.Fatalf("learned-to %d after restart and election, want %d", got, first+1)
	}
	hs, _ := s.InitialState()
	if a, _, _ := s.Action(first); !a.Learned && first >= hs.LearnedTo || string(a.Entry.Data) != "a" {
		t.Fatalf("position %d after the election: %+v (learned watermark %d), want learned append(a)", first, a, hs.LearnedTo)
	}
}

// TestCoordinatorCountsOwnAcceptOnceSaved: the coordinator's write requests
// leave before its own accept is saved (Ready.Early), so its own vote counts
// only once Advance reports the batch holding it saved; an acknowledgement
// arriving before that (a driver that steps the core while it saves) is not
// a quorum with it yet.
func TestCoordinatorCountsOwnAcceptOnceSaved(t *testing.T) {
	t.Parallel()
	c, s := electedCore(t, testMembership(1, 2, 3))
	first, err := c.Propose([]Entry{{Type: EntryAppend, Data: []byte("a")}})
	if err != nil {
		t.Fatal(err)
	}
	rd := c.Ready()
	if len(rd.Early) != 2 || !rd.MustSync {
		t.Fatalf("Ready after Propose: %d early messages, MustSync %v; want the write requests to 2 and 3 early, and a synced save", len(rd.Early), rd.MustSync)
	}
	none(t, rd.Messages, MsgWriteRequest)
	ack := Message{Type: MsgWriteResponse, From: 2, To: 1, Cluster: testCluster, Proposal: c.proposal, Position: first, End: first + 1, Result: ResultAccept, Status: StatusVoting}
	if err := c.Step(ack); err != nil {
		t.Fatal(err)
	}
	if got := c.Status().LearnedTo; got != first {
		t.Fatalf("learned-to %d with the coordinator's accept not saved yet and one other accept, want %d", got, first)
	}
	s.save(rd)
	s.sync()
	c.Advance(rd)
	if got := c.Status().LearnedTo; got != first+1 {
		t.Fatalf("learned-to %d once the coordinator's accept is saved, want %d", got, first+1)
	}
}
