package paxos

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The rule tests drive one Core with hand-written messages. The replica is
// replica 1 of cluster 7, whose voters are 1, 2 and 3 (position 0 holds that
// membership, learned), unless a test says otherwise.

const testCluster ClusterID = 7

func testMembership(ids ...ReplicaID) Membership {
	m := Membership{Cluster: testCluster}
	for _, id := range ids {
		m.Members = append(m.Members, Member{ID: id, Voter: true})
	}
	return m
}

// votingStore returns a store of a VOTING replica with the given implicit
// promise and position 0 learned.
func votingStore(id ReplicaID, promised Proposal, m Membership) *memStore {
	s := newMemStore()
	s.hs = HardState{Replica: id, Cluster: testCluster, Status: StatusVoting, Promised: promised, Membership: m}
	s.hsSet = true
	mm := m.clone()
	s.acts[0] = Action{Position: 0, Promised: Proposal{1, 1}, Performed: Proposal{1, 1}, Learned: true, Entry: Entry{Type: EntryConfig, Config: &mm}}
	return s
}

func testConfig(id ReplicaID) Config {
	return Config{Replica: id, Quorum: 2, HeartbeatTicks: 1, LeaseTicks: 5, RetryTicks: 3, Window: 8, MaxBatchBytes: 1 << 20}
}

func newTestCore(t *testing.T, cfg Config, s *memStore) *Core {
	t.Helper()
	c, err := New(cfg, s)
	if err != nil {
		t.Fatal(err)
	}
	drain(t, c, s)
	return c
}

// drain persists and returns the messages of every pending Ready.
func drain(t *testing.T, c *Core, s *memStore) (msgs []Message, events []Event) {
	t.Helper()
	for c.HasReady() {
		rd := c.Ready()
		s.save(rd)
		s.sync()
		msgs = append(msgs, rd.Messages...)
		events = append(events, rd.Events...)
		c.Advance(rd)
	}
	return msgs, events
}

func step(t *testing.T, c *Core, s *memStore, m Message) []Message {
	t.Helper()
	if m.Cluster == 0 {
		m.Cluster = testCluster
	}
	if err := c.Step(m); err != nil {
		t.Fatal(err)
	}
	msgs, _ := drain(t, c, s)
	return msgs
}

// only returns the single message of type typ in msgs.
func only(t *testing.T, msgs []Message, typ MessageType) Message {
	t.Helper()
	var out []Message
	for _, m := range msgs {
		if m.Type == typ {
			out = append(out, m)
		}
	}
	if len(out) != 1 {
		t.Fatalf("want one %v, got %d in %+v", typ, len(out), msgs)
	}
	return out[0]
}

func none(t *testing.T, msgs []Message, typ MessageType) {
	t.Helper()
	for _, m := range msgs {
		if m.Type == typ {
			t.Fatalf("want no %v, got %+v", typ, m)
		}
	}
}

// grantPreVote answers the pre-vote request in msgs with replica 2's yes,
// which with replica 1's own makes a quorum of {1, 2, 3}: the promise round
// starts. It does not drain c.
func grantPreVote(t *testing.T, c *Core, msgs []Message) {
	t.Helper()
	pv := only(t, msgs, MsgPreVoteRequest)
	if err := c.Step(withCluster(Message{Type: MsgPreVoteResponse, From: 2, To: 1, Proposal: pv.Proposal, Begin: pv.Begin, Result: ResultAccept, Status: StatusVoting})); err != nil {
		t.Fatal(err)
	}
}

// startCampaign starts a campaign of replica 1, grants its pre-vote and returns
// the messages of the promise round.
func startCampaign(t *testing.T, c *Core, s *memStore) []Message {
	t.Helper()
	if err := c.Campaign(); err != nil {
		t.Fatal(err)
	}
	msgs, _ := drain(t, c, s)
	grantPreVote(t, c, msgs)
	msgs, _ = drain(t, c, s)
	return msgs
}

func appendAt(p Position, prop Proposal, data string) Action {
	return Action{Position: p, Promised: prop, Performed: prop, Entry: Entry{Type: EntryAppend, Data: []byte(data)}}
}

func TestReplicaIgnoresWhenNotVoting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		req  Message
		want MessageType
	}{
		{"implicit promise", Message{Type: MsgPromiseRequest, From: 2, To: 1, Proposal: Proposal{5, 2}, Implicit: true}, MsgPromiseResponse},
		{"explicit promise", Message{Type: MsgPromiseRequest, From: 2, To: 1, Proposal: Proposal{5, 2}, Position: 1, End: 3}, MsgPromiseResponse},
		{"write", Message{Type: MsgWriteRequest, From: 2, To: 1, Proposal: Proposal{5, 2}, Actions: []Action{appendAt(1, Proposal{5, 2}, "x")}}, MsgWriteResponse},
		{"heartbeat", Message{Type: MsgHeartbeat, From: 2, Proposal: Proposal{5, 2}}, MsgHeartbeatResponse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
			s.hs.Status = StatusRecovering
			c := newTestCore(t, testConfig(1), s)
			got := only(t, step(t, c, s, tc.req), tc.want)
			if got.Result != ResultIgnored {
				t.Errorf("request %+v: got result %v, want %v", tc.req, got.Result, ResultIgnored)
			}
			if len(s.acts) != 1 || s.hs.Promised != (Proposal{}) {
				t.Errorf("a non-VOTING replica changed its state: hs %+v actions %d", s.hs, len(s.acts))
			}
		})
	}
}

func TestReplicaImplicitPromise(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		promised     Proposal
		req          Proposal
		wantResult   Result
		wantProposal Proposal
		wantPromised Proposal
	}{
		{"RejectsLower", Proposal{5, 2}, Proposal{4, 3}, ResultReject, Proposal{5, 2}, Proposal{5, 2}},
		{"RejectsLowerReplicaSameRound", Proposal{5, 3}, Proposal{5, 2}, ResultReject, Proposal{5, 3}, Proposal{5, 3}},
		{"AcceptsEqualRetransmission", Proposal{5, 2}, Proposal{5, 2}, ResultAccept, Proposal{5, 2}, Proposal{5, 2}},
		{"AcceptsHigherAndPersists", Proposal{5, 2}, Proposal{6, 3}, ResultAccept, Proposal{6, 3}, Proposal{6, 3}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := votingStore(1, tc.promised, testMembership(1, 2, 3))
			c := newTestCore(t, testConfig(1), s)
			got := only(t, step(t, c, s, Message{Type: MsgPromiseRequest, From: tc.req.Replica, To: 1, Proposal: tc.req, Implicit: true}), MsgPromiseResponse)
			if got.Result != tc.wantResult || got.Proposal != tc.wantProposal {
				t.Errorf("promised %v, request %v: got %v %v, want %v %v", tc.promised, tc.req, got.Result, got.Proposal, tc.wantResult, tc.wantProposal)
			}
			if s.hs.Promised != tc.wantPromised {
				t.Errorf("persisted promise %v, want %v", s.hs.Promised, tc.wantPromised)
			}
			if got.Result == ResultAccept && got.End != 1 {
				t.Errorf("accept reports end %d, want 1", got.End)
			}
		})
	}
}

func TestReplicaRefusesImplicitPromiseWhileLeaseLive(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{5, 2}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	hb := only(t, step(t, c, s, Message{Type: MsgHeartbeat, From: 2, Proposal: Proposal{5, 2}, Begin: 0}), MsgHeartbeatResponse)
	if hb.Result != ResultAccept {
		t.Fatalf("heartbeat: got %v", hb.Result)
	}
	req := Message{Type: MsgPromiseRequest, From: 3, To: 1, Proposal: Proposal{9, 3}, Implicit: true}
	got := only(t, step(t, c, s, req), MsgPromiseResponse)
	if got.Result != ResultReject || got.Reason == "" {
		t.Fatalf("promise to another proposer within the lease: got %v %q, want a rejection with a reason", got.Result, got.Reason)
	}
	if s.hs.Promised != (Proposal{5, 2}) {
		t.Fatalf("promise changed during the lease: %v", s.hs.Promised)
	}
	for range 5 {
		c.Tick()
	}
	drain(t, c, s)
	got = only(t, step(t, c, s, req), MsgPromiseResponse)
	if got.Result != ResultAccept {
		t.Fatalf("promise after the lease expired: got %v, want accept", got.Result)
	}
}

func TestReplicaExplicitPromise(t *testing.T) {
	t.Parallel()
	t.Run("RejectsBelowActionPromise", func(t *testing.T) {
		t.Parallel()
		s := votingStore(1, Proposal{5, 2}, testMembership(1, 2, 3))
		s.acts[2] = Action{Position: 2, Promised: Proposal{8, 3}}
		c := newTestCore(t, testConfig(1), s)
		got := only(t, step(t, c, s, Message{Type: MsgPromiseRequest, From: 2, To: 1, Proposal: Proposal{6, 2}, Position: 1, End: 4}), MsgPromiseResponse)
		if got.Result != ResultReject || got.Proposal != (Proposal{8, 3}) {
			t.Fatalf("got %v %v, want reject with 8.3", got.Result, got.Proposal)
		}
	})
	t.Run("RejectsBelowImplicitPromise", func(t *testing.T) {
		t.Parallel()
		s := votingStore(1, Proposal{5, 2}, testMembership(1, 2, 3))
		c := newTestCore(t, testConfig(1), s)
		got := only(t, step(t, c, s, Message{Type: MsgPromiseRequest, From: 3, To: 1, Proposal: Proposal{4, 3}, Position: 1, End: 2}), MsgPromiseResponse)
		if got.Result != ResultReject || got.Proposal != (Proposal{5, 2}) {
			t.Fatalf("got %v %v, want reject with 5.2", got.Result, got.Proposal)
		}
	})
	t.Run("ReturnsPreviousActionsAndPersistsPromise", func(t *testing.T) {
		t.Parallel()
		s := votingStore(1, Proposal{5, 2}, testMembership(1, 2, 3))
		s.acts[1] = appendAt(1, Proposal{3, 3}, "old")
		learned := appendAt(2, Proposal{9, 9}, "chosen") // learned under a higher promise: no promise needed
		learned.Learned = true
		s.acts[2] = learned
		c := newTestCore(t, testConfig(1), s)
		got := only(t, step(t, c, s, Message{Type: MsgPromiseRequest, From: 3, To: 1, Proposal: Proposal{7, 3}, Position: 1, End: 4}), MsgPromiseResponse)
		if got.Result != ResultAccept || got.End != 4 {
			t.Fatalf("got %v end %d, want accept covering to 4", got.Result, got.End)
		}
		if diff := cmp.Diff([]Action{s.acts[1], learned}, got.Actions, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".Promised" }, cmp.Ignore())); diff != "" {
			t.Errorf("returned actions (-want +got):\n%s", diff)
		}
		if s.acts[1].Promised != (Proposal{7, 3}) || s.acts[3].Promised != (Proposal{7, 3}) {
			t.Errorf("explicit promise not persisted: %+v %+v", s.acts[1], s.acts[3])
		}
		if s.hs.Promised != (Proposal{5, 2}) {
			t.Errorf("an explicit promise changed the implicit one: %v", s.hs.Promised)
		}
	})
}

func TestWriteCheckedAgainstImplicitPromise(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{5, 2}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	got := only(t, step(t, c, s, Message{Type: MsgWriteRequest, From: 3, To: 1, Proposal: Proposal{4, 3}, Actions: []Action{appendAt(1, Proposal{4, 3}, "x")}}), MsgWriteResponse)
	if got.Result != ResultReject || got.Proposal != (Proposal{5, 2}) {
		t.Fatalf("got %v %v, want reject with 5.2", got.Result, got.Proposal)
	}
	if _, ok := s.acts[1]; ok {
		t.Fatal("a rejected write was stored")
	}
}

func TestWriteCheckedAgainstMaxOfActionAndImplicitPromise(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		action   Action
		implicit Proposal
		write    Proposal
		want     Result
	}{
		{"action promise higher", Action{Position: 1, Promised: Proposal{8, 3}}, Proposal{5, 2}, Proposal{6, 2}, ResultReject},
		// Mesos checked only action.promised: an action created under an old
		// implicit promise would take a write below a newer implicit one.
		{"implicit promise higher than stale action", appendAt(1, Proposal{3, 3}, "old"), Proposal{6, 2}, Proposal{4, 3}, ResultReject},
		{"equal to both", Action{Position: 1, Promised: Proposal{6, 2}}, Proposal{6, 2}, Proposal{6, 2}, ResultAccept},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := votingStore(1, tc.implicit, testMembership(1, 2, 3))
			s.acts[1] = tc.action
			c := newTestCore(t, testConfig(1), s)
			got := only(t, step(t, c, s, Message{Type: MsgWriteRequest, From: tc.write.Replica, To: 1, Proposal: tc.write, Actions: []Action{appendAt(1, tc.write, "new")}}), MsgWriteResponse)
			if got.Result != tc.want {
				t.Fatalf("action %+v implicit %v write %v: got %v, want %v", tc.action, tc.implicit, tc.write, got.Result, tc.want)
			}
		})
	}
}

func TestWriteRaisesPromiseOnOverwrite(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{5, 2}, testMembership(1, 2, 3))
	s.acts[1] = appendAt(1, Proposal{3, 3}, "old")
	c := newTestCore(t, testConfig(1), s)
	got := only(t, step(t, c, s, Message{Type: MsgWriteRequest, From: 2, To: 1, Proposal: Proposal{5, 2}, Actions: []Action{appendAt(1, Proposal{5, 2}, "new")}}), MsgWriteResponse)
	if got.Result != ResultAccept || got.Position != 1 || got.End != 2 {
		t.Fatalf("got %+v, want accept of [1, 2)", got)
	}
	if want := appendAt(1, Proposal{5, 2}, "new"); !cmp.Equal(s.acts[1], want) {
		t.Fatalf("stored %+v, want %+v", s.acts[1], want)
	}
}

func TestLearnedActionNeverOverwritten(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{5, 2}, testMembership(1, 2, 3))
	learned := appendAt(1, Proposal{4, 2}, "chosen")
	learned.Learned = true
	s.acts[1] = learned
	c := newTestCore(t, testConfig(1), s)
	t.Run("write of another value goes unanswered", func(t *testing.T) {
		msgs := step(t, c, s, Message{Type: MsgWriteRequest, From: 2, To: 1, Proposal: Proposal{6, 2}, Actions: []Action{appendAt(1, Proposal{6, 2}, "other")}})
		none(t, msgs, MsgWriteResponse)
		if !cmp.Equal(s.acts[1], learned) {
			t.Fatalf("learned action changed: %+v", s.acts[1])
		}
	})
	t.Run("write of the same value is acknowledged", func(t *testing.T) {
		got := only(t, step(t, c, s, Message{Type: MsgWriteRequest, From: 2, To: 1, Proposal: Proposal{6, 2}, Actions: []Action{appendAt(1, Proposal{6, 2}, "chosen")}}), MsgWriteResponse)
		if got.Result != ResultAccept || !cmp.Equal(s.acts[1], learned) {
			t.Fatalf("got %v, stored %+v", got.Result, s.acts[1])
		}
	})
	t.Run("learning another value panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Fatal("learning a second value at a position did not panic")
			}
		}()
		other := appendAt(1, Proposal{6, 2}, "other")
		other.Learned = true
		_ = c.Step(Message{Type: MsgLearned, Cluster: testCluster, From: 2, Actions: []Action{other}})
	})
}

func TestWriteToTruncatedPositionCheckedAgainstPromise(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{5, 2}, testMembership(1, 2, 3))
	s.hs.Begin = 4
	delete(s.acts, 0)
	c := newTestCore(t, testConfig(1), s)
	got := only(t, step(t, c, s, Message{Type: MsgWriteRequest, From: 3, To: 1, Proposal: Proposal{4, 3}, Actions: []Action{appendAt(2, Proposal{4, 3}, "stale")}}), MsgWriteResponse)
	if got.Result != ResultReject {
		t.Fatalf("a deposed coordinator's write below Begin: got %v, want reject", got.Result)
	}
	got = only(t, step(t, c, s, Message{Type: MsgWriteRequest, From: 2, To: 1, Proposal: Proposal{5, 2}, Actions: []Action{appendAt(2, Proposal{5, 2}, "x")}}), MsgWriteResponse)
	if got.Result != ResultAccept {
		t.Fatalf("the current coordinator's retransmission below Begin: got %v, want accept", got.Result)
	}
}

func TestMessageFromAnotherClusterRefused(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{5, 2}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	req := Message{Type: MsgPromiseRequest, Cluster: 99, From: 2, To: 1, Proposal: Proposal{9, 2}, Implicit: true}
	msgs := step(t, c, s, req)
	none(t, msgs, MsgPromiseResponse)
	ref := only(t, msgs, MsgRefused)
	if ref.To != 2 || ref.Reason == "" {
		t.Fatalf("refusal %+v", ref)
	}
	if s.hs.Promised != (Proposal{5, 2}) {
		t.Fatalf("a message from another cluster changed the promise: %v", s.hs.Promised)
	}
	// At most one refusal per peer per LeaseTicks.
	none(t, step(t, c, s, req), MsgRefused)
	if got := c.Status().Refused; got != 2 {
		t.Fatalf("refused counter %d, want 2", got)
	}
}

// electedCore returns replica 1 elected coordinator of {1,2,3}.
func electedCore(t *testing.T, m Membership) (*Core, *memStore) {
	t.Helper()
	s := votingStore(1, Proposal{}, m)
	c := newTestCore(t, testConfig(1), s)
	req := only(t, startCampaign(t, c, s), MsgPromiseRequest)
	for _, id := range []ReplicaID{2} {
		step(t, c, s, Message{Type: MsgPromiseResponse, From: id, To: 1, Proposal: req.Proposal, Implicit: true, Result: ResultAccept, End: 1, Status: StatusVoting})
	}
	if c.Status().Role != RoleCoordinator {
		t.Fatalf("not elected: %+v", c.Status())
	}
	return c, s
}

func TestNonMemberRefused(t *testing.T) {
	t.Parallel()
	c, s := electedCore(t, testMembership(1, 2, 3))
	first, err := c.Propose([]Entry{{Type: EntryAppend, Data: []byte("a")}})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, c, s)
	ack := Message{Type: MsgWriteResponse, From: 9, To: 1, Proposal: c.proposal, Position: first, End: first + 1, Result: ResultAccept, Status: StatusVoting}
	msgs := step(t, c, s, ack)
	ref := only(t, msgs, MsgRefused)
	if ref.To != 9 {
		t.Fatalf("refusal to %d, want 9", ref.To)
	}
	if c.Status().LearnedTo != first {
		t.Fatalf("a non-member's acknowledgement was counted: learned-to %d", c.Status().LearnedTo)
	}
	none(t, step(t, c, s, ack), MsgRefused)
	ack.From = 2
	step(t, c, s, ack)
	if c.Status().LearnedTo != first+1 {
		t.Fatalf("a member's acknowledgement was not counted: learned-to %d", c.Status().LearnedTo)
	}
}

func TestLocalVotePersistedWithItsMessages(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{3, 2}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	if err := c.Campaign(); err != nil {
		t.Fatal(err)
	}
	msgs, _ := drain(t, c, s)
	if s.hs.Promised != (Proposal{3, 2}) {
		t.Fatalf("the pre-vote changed the promise: %v, want 3.2", s.hs.Promised)
	}
	grantPreVote(t, c, msgs)
	rd := c.Ready()
	req := only(t, rd.Messages, MsgPromiseRequest)
	if rd.HardState == nil || rd.HardState.Promised != req.Proposal {
		t.Fatalf("the batch that sends promise request %v does not persist the local promise: %+v", req.Proposal, rd.HardState)
	}
	if req.Proposal != (Proposal{4, 1}) {
		t.Fatalf("proposal %v, want 4.1 (above the promise 3.2)", req.Proposal)
	}
}

func TestCoordinatorRejectLosesLeadership(t *testing.T) {
	t.Parallel()
	c, s := electedCore(t, testMembership(1, 2, 3))
	first, err := c.Propose([]Entry{{Type: EntryAppend, Data: []byte("a")}})
	if err != nil {
		t.Fatal(err)
	}
	drain(t, c, s)
	if err := c.Step(Message{Type: MsgWriteResponse, Cluster: testCluster, From: 3, To: 1, Proposal: Proposal{9, 3}, Position: first, End: first + 1, Result: ResultReject}); err != nil {
		t.Fatal(err)
	}
	_, events := drain(t, c, s)
	if diff := cmp.Diff([]Event{LostLeadership{By: Proposal{9, 3}}}, events); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if _, err := c.Propose([]Entry{{Type: EntryAppend}}); !errors.Is(err, ErrNotCoordinator) {
		t.Fatalf("propose after losing: %v, want ErrNotCoordinator", err)
	}
}

func TestCampaignIgnoredQuorumRetries(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	req := only(t, startCampaign(t, c, s), MsgPromiseRequest)
	for _, id := range []ReplicaID{2, 3} {
		step(t, c, s, Message{Type: MsgPromiseResponse, From: id, To: 1, Proposal: req.Proposal, Implicit: true, Result: ResultIgnored, Status: StatusRecovering})
	}
	if got := c.Status().Role; got != RoleCampaigning {
		t.Fatalf("role %v after IGNORED answers, want still campaigning", got)
	}
	var resent []Message
	for range 3 {
		c.Tick()
		m, _ := drain(t, c, s)
		resent = append(resent, m...)
	}
	if again := only(t, resent, MsgPromiseRequest); again.Proposal != req.Proposal {
		t.Fatalf("retry with %v, want the same proposal %v", again.Proposal, req.Proposal)
	}
}

func TestMembershipChangeRules(t *testing.T) {
	t.Parallel()
	t.Run("OneChangeAtATime", func(t *testing.T) {
		t.Parallel()
		c, _ := electedCore(t, testMembership(1, 2, 3))
		if _, err := c.ChangeMembership(MembershipChange{Type: AddNonVoter, ID: 4}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.ChangeMembership(MembershipChange{Type: AddNonVoter, ID: 5}); !errors.Is(err, ErrChangeInProgress) {
			t.Fatalf("second change: %v, want ErrChangeInProgress", err)
		}
		if _, err := c.Propose([]Entry{{Type: EntryAppend}}); !errors.Is(err, ErrWindowFull) {
			t.Fatalf("write above an unlearned config: %v, want ErrWindowFull", err)
		}
	})
	t.Run("PromoteRequiresCaughtUp", func(t *testing.T) {
		t.Parallel()
		m := testMembership(1, 2, 3)
		m.Members = append(m.Members, Member{ID: 4})
		c, _ := electedCore(t, m)
		if _, err := c.ChangeMembership(MembershipChange{Type: Promote, ID: 4}); !errors.Is(err, ErrNotCaughtUp) {
			t.Fatalf("promote without a report: %v, want ErrNotCaughtUp", err)
		}
	})
	t.Run("RemoveSelfRefused", func(t *testing.T) {
		t.Parallel()
		c, _ := electedCore(t, testMembership(1, 2, 3))
		if _, err := c.ChangeMembership(MembershipChange{Type: Remove, ID: 1}); !errors.Is(err, ErrInvalidChange) {
			t.Fatalf("remove self: %v, want ErrInvalidChange", err)
		}
	})
}

func TestMembershipChangeApply(t *testing.T) {
	t.Parallel()
	base := testMembership(1, 2)
	base.Members = append(base.Members, Member{ID: 5})
	tests := []struct {
		name    string
		ch      MembershipChange
		want    []Member
		wantErr error
	}{
		{"add non-voter sorted", MembershipChange{Type: AddNonVoter, ID: 3, Addr: "h3"}, []Member{{ID: 1, Voter: true}, {ID: 2, Voter: true}, {ID: 3, Addr: "h3"}, {ID: 5}}, nil},
		{"add existing", MembershipChange{Type: AddNonVoter, ID: 2}, nil, ErrInvalidChange},
		{"promote", MembershipChange{Type: Promote, ID: 5}, []Member{{ID: 1, Voter: true}, {ID: 2, Voter: true}, {ID: 5, Voter: true}}, nil},
		{"promote a voter", MembershipChange{Type: Promote, ID: 1}, nil, ErrInvalidChange},
		{"remove", MembershipChange{Type: Remove, ID: 2}, []Member{{ID: 1, Voter: true}, {ID: 5}}, nil},
		{"remove unknown", MembershipChange{Type: Remove, ID: 8}, nil, ErrInvalidChange},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := tc.ch.apply(base, 3)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("apply %+v: error %v, want %v", tc.ch, err, tc.wantErr)
			}
			if err == nil {
				if diff := cmp.Diff(tc.want, got.Members); diff != "" {
					t.Errorf("apply %+v (-want +got):\n%s", tc.ch, diff)
				}
			}
		})
	}
	if _, err := (MembershipChange{Type: Promote, ID: 5}).apply(base, 2); !errors.Is(err, ErrTooManyVoters) {
		t.Fatalf("promote beyond 2*Quorum-1: %v, want ErrTooManyVoters", err)
	}
	one := testMembership(1)
	if _, err := (MembershipChange{Type: Remove, ID: 1}).apply(one, 1); !errors.Is(err, ErrInvalidChange) {
		t.Fatalf("remove the last voter: %v, want ErrInvalidChange", err)
	}
}

func TestQuorumSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		voters, floor, want int
		initSet             bool
	}{
		{1, 1, 1, false}, {2, 1, 2, false}, {3, 2, 2, false}, {4, 2, 3, false}, {5, 3, 3, false},
		{3, 3, 3, false}, // --quorum 3 with 3 voters: safe, no fault tolerance
		{1, 2, 1, false}, // growing 1 -> 3 with --quorum 2: the floor never exceeds the voters
		{3, 2, 3, true},  // before position 0 every replica of the initialisation set
	}
	for _, tc := range tests {
		m := Membership{Cluster: testCluster}
		if tc.initSet {
			m.Cluster = 0
		}
		for i := range tc.voters {
			m.Members = append(m.Members, Member{ID: ReplicaID(i + 1), Voter: true})
		}
		m.Members = append(m.Members, Member{ID: 99}) // a non-voter never counts
		if got := quorumSize(m, tc.floor); got != tc.want {
			t.Errorf("voters %d floor %d init %v: got %d, want %d", tc.voters, tc.floor, tc.initSet, got, tc.want)
		}
	}
}

func TestTruncationMovesBegin(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{5, 2}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	var learned []Action
	for p, e := range []Entry{{Type: EntryAppend, Data: []byte("a")}, {Type: EntrySnapshot, Data: []byte("s")}, {Type: EntryTruncate, To: 2}} {
		a := Action{Position: Position(p + 1), Promised: Proposal{5, 2}, Performed: Proposal{5, 2}, Learned: true, Entry: e}
		learned = append(learned, a)
	}
	if err := c.Step(Message{Type: MsgLearned, Cluster: testCluster, From: 2, Actions: learned}); err != nil {
		t.Fatal(err)
	}
	rd := c.Ready()
	if rd.TruncateBelow != 2 || rd.HardState == nil || rd.HardState.Begin != 2 {
		t.Fatalf("truncate below %d, hard state %+v: want 2", rd.TruncateBelow, rd.HardState)
	}
	if len(rd.Learned) != 3 {
		t.Fatalf("learned %d actions, want 3 (truncation does not hide learned values from the application)", len(rd.Learned))
	}
}

func TestTruncationBelowMembershipSkipped(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{5, 2}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	m := testMembership(1, 2, 3, 4)
	learned := []Action{
		{Position: 1, Learned: true, Entry: Entry{Type: EntrySnapshot, Data: []byte("s")}},
		{Position: 2, Learned: true, Entry: Entry{Type: EntryConfig, Config: &m}},
		{Position: 3, Learned: true, Entry: Entry{Type: EntryTruncate, To: 1}},
	}
	step(t, c, s, Message{Type: MsgLearned, From: 2, Actions: learned})
	if s.hs.Begin != 0 || s.hs.ConfigAt != 2 {
		t.Fatalf("begin %d config-at %d: a truncation below the membership in force must be skipped", s.hs.Begin, s.hs.ConfigAt)
	}
}

func TestMembershipAdvancesInOrder(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{5, 2}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	m := testMembership(1, 2, 3, 4)
	step(t, c, s, Message{Type: MsgLearned, From: 2, Actions: []Action{{Position: 3, Learned: true, Entry: Entry{Type: EntryConfig, Config: &m}}}})
	if s.hs.ConfigAt != 0 {
		t.Fatalf("a membership learned above a hole became the one in force: config-at %d", s.hs.ConfigAt)
	}
	if got := c.configFor(2); got.voters() != 3 {
		t.Fatalf("membership in force at 2 has %d voters, want 3", got.voters())
	}
	if got := c.configFor(4); got.voters() != 4 {
		t.Fatalf("membership in force at 4 has %d voters, want 4", got.voters())
	}
	step(t, c, s, Message{Type: MsgLearned, From: 2, Actions: []Action{{Position: 1, Learned: true, Entry: Entry{Type: EntryNop}}, {Position: 2, Learned: true, Entry: Entry{Type: EntryNop}}}})
	if s.hs.ConfigAt != 3 || s.hs.Membership.voters() != 4 {
		t.Fatalf("config-at %d voters %d after the hole was learned, want 3 and 4", s.hs.ConfigAt, s.hs.Membership.voters())
	}
}

func TestRecoveringReplicaDoesNotVote(t *testing.T) {
	t.Parallel()
	s := newMemStore()
	c := newTestCore(t, testConfig(4), s)
	if c.Status().Status != StatusEmpty {
		t.Fatalf("status %v, want EMPTY", c.Status().Status)
	}
	// Two VOTING voters answer the recover round: RECOVERING, not VOTING,
	// until position 0..end are learned. Replica 4 was added as a non-voter.
	m := testMembership(1, 2, 3)
	m.Members = append(m.Members, Member{ID: 4})
	for _, id := range []ReplicaID{1, 2} {
		step(t, c, s, Message{Type: MsgRecoverResponse, From: id, To: 4, Proposal: Proposal{1, 4}, Status: StatusVoting, Begin: 0, End: 3, Config: &m, Position: 0})
	}
	if got := c.Status().Status; got != StatusRecovering {
		t.Fatalf("status %v, want RECOVERING", got)
	}
	got := only(t, step(t, c, s, Message{Type: MsgWriteRequest, From: 1, To: 4, Proposal: Proposal{5, 1}, Actions: []Action{appendAt(2, Proposal{5, 1}, "x")}}), MsgWriteResponse)
	if got.Result != ResultIgnored {
		t.Fatalf("a recovering replica answered %v to a write", got.Result)
	}
}

func TestCampaignRefusedWhileMembershipUnknown(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	m := testMembership(1, 2, 3)
	// A catch-up answer from a replica truncated at 5 whose membership was
	// set at 7: the membership in force between 5 and 7 is unknown here.
	step(t, c, s, Message{Type: MsgCatchupResponse, From: 2, To: 1, Result: ResultAccept, Begin: 5, End: 6, Config: &m, Position: 7,
		Actions: []Action{{Position: 5, Learned: true, Entry: Entry{Type: EntrySnapshot, Data: []byte("s")}}}})
	if c.Status().Begin != 5 {
		t.Fatalf("begin %d after catching up past a truncation, want 5", c.Status().Begin)
	}
	if err := c.Campaign(); !errors.Is(err, ErrNotVoting) {
		t.Fatalf("campaign with an unknown membership in force: %v, want ErrNotVoting", err)
	}
}

// A replica answering a heartbeat or accepting a write from a coordinator
// with a higher proposal promises it: a voter promoted later has promised the
// coordinator's proposal, so a deposed coordinator that learned the new
// membership can never count it.
func TestHeartbeatAndWriteRaiseImplicitPromise(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    Message
	}{
		{"heartbeat", Message{Type: MsgHeartbeat, From: 3, Proposal: Proposal{6, 3}}},
		{"write", Message{Type: MsgWriteRequest, From: 3, To: 1, Proposal: Proposal{6, 3}, Actions: []Action{appendAt(1, Proposal{6, 3}, "x")}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := votingStore(1, Proposal{5, 2}, testMembership(1, 2, 3))
			c := newTestCore(t, testConfig(1), s)
			if err := c.Step(withCluster(tc.m)); err != nil {
				t.Fatal(err)
			}
			rd := c.Ready()
			if len(rd.Messages) != 1 || rd.Messages[0].Result != ResultAccept {
				t.Fatalf("answer %+v, want one accept", rd.Messages)
			}
			if rd.HardState == nil || rd.HardState.Promised != (Proposal{6, 3}) {
				t.Fatalf("the accepting batch persists %+v, want the promise 6.3", rd.HardState)
			}
		})
	}
}

func TestPromoteRequiresPromise(t *testing.T) {
	t.Parallel()
	m := testMembership(1, 2)
	m.Members = append(m.Members, Member{ID: 4})
	c, s := electedCore(t, m)
	hb := Message{Type: MsgHeartbeatResponse, From: 4, To: 1, Proposal: Proposal{1, 4}, Position: 1, Status: StatusVoting, Result: ResultAccept}
	step(t, c, s, hb) // an answer to another proposal: no promise of ours
	if _, err := c.ChangeMembership(MembershipChange{Type: Promote, ID: 4}); !errors.Is(err, ErrNotCaughtUp) {
		t.Fatalf("promote without the replica's promise: %v, want ErrNotCaughtUp", err)
	}
	hb.Proposal = c.proposal
	step(t, c, s, hb)
	if _, err := c.ChangeMembership(MembershipChange{Type: Promote, ID: 4}); err != nil {
		t.Fatalf("promote a caught-up replica that promised: %v", err)
	}
}

func withCluster(m Message) Message {
	m.Cluster = testCluster
	return m
}

// Found by the simulator (seed 5311 before this fix): a candidate whose own
// replica went on to promise a higher proposal (a live coordinator's
// heartbeat) kept campaigning forever and never caught up. It must give up.
func TestCampaignAbandonedWhenPromisedHigher(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	if err := c.Campaign(); err != nil {
		t.Fatal(err)
	}
	drain(t, c, s)
	if err := c.Step(withCluster(Message{Type: MsgHeartbeat, From: 2, Proposal: Proposal{5, 2}, Position: 1})); err != nil {
		t.Fatal(err)
	}
	_, events := drain(t, c, s)
	if diff := cmp.Diff([]Event{CampaignFailed{By: Proposal{5, 2}, Reason: "the local replica promised a higher proposal"}}, events); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if got := c.Status().Role; got != RoleFollower {
		t.Fatalf("role %v, want follower", got)
	}
}

func TestLearnedDeliveredFromApplied(t *testing.T) {
	t.Parallel()
	tests := []struct {
		applied Position
		want    []Position
	}{
		{0, []Position{0, 1, 2, 3}},
		{2, []Position{2, 3}},
		{9, nil},
	}
	for _, tc := range tests {
		s := votingStore(1, Proposal{5, 2}, testMembership(1, 2, 3))
		for p := Position(1); p <= 3; p++ {
			a := appendAt(p, Proposal{5, 2}, "x")
			a.Learned = true
			s.acts[p] = a
		}
		s.acts[5] = appendAt(5, Proposal{5, 2}, "unlearned")
		cfg := testConfig(1)
		cfg.Applied = tc.applied
		c, err := New(cfg, s)
		if err != nil {
			t.Fatal(err)
		}
		var got []Position
		for _, a := range c.Ready().Learned {
			got = append(got, a.Position)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("applied %d: delivered (-want +got):\n%s", tc.applied, diff)
		}
		if st := c.Status(); st.LearnedTo != 4 || st.End != 6 {
			t.Errorf("applied %d: learned-to %d end %d, want 4 and 6", tc.applied, st.LearnedTo, st.End)
		}
	}
}

func TestAutoInitializeTwoPhases(t *testing.T) {
	t.Parallel()
	s := newMemStore()
	cfg := testConfig(1)
	cfg.AutoInitialize = true
	c := newTestCore(t, cfg, s)
	answer := func(from ReplicaID, round uint64, st Status) {
		self := Membership{Members: []Member{{ID: from, Addr: "h"}}}
		step(t, c, s, Message{Type: MsgRecoverResponse, From: from, To: 1, Proposal: Proposal{round, 1}, Status: st, Config: &self})
	}
	answer(2, 1, StatusEmpty)
	if got := c.Status().Status; got != StatusEmpty {
		t.Fatalf("two of three EMPTY: status %v, want EMPTY", got)
	}
	answer(3, 1, StatusEmpty)
	if got := c.Status().Status; got != StatusStarting {
		t.Fatalf("three of three EMPTY: status %v, want STARTING", got)
	}
	// The second phase needs every expected replica STARTING or VOTING: an
	// EMPTY one keeps this replica STARTING, so it never votes alone.
	answer(2, 2, StatusStarting)
	answer(3, 2, StatusEmpty)
	if got := c.Status().Status; got != StatusStarting {
		t.Fatalf("one replica still EMPTY: status %v, want STARTING", got)
	}
	answer(3, 2, StatusStarting)
	st := c.Status()
	if st.Status != StatusVoting || st.Membership.voters() != 3 || st.Membership.Cluster != 0 {
		t.Fatalf("all STARTING: status %v membership %+v, want VOTING with the three replicas (no cluster yet)", st.Status, st.Membership)
	}
}

func TestNoAutoInitializeStaysEmpty(t *testing.T) {
	t.Parallel()
	s := newMemStore()
	c := newTestCore(t, testConfig(1), s)
	for _, from := range []ReplicaID{2, 3} {
		self := Membership{Members: []Member{{ID: from}}}
		if err := c.Step(Message{Type: MsgRecoverResponse, From: from, To: 1, Proposal: Proposal{1, 1}, Status: StatusEmpty, Config: &self}); err != nil {
			t.Fatal(err)
		}
	}
	_, events := drain(t, c, s)
	if diff := cmp.Diff([]Event{NotInitialized{Empty: 3}}, events); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	if got := c.Status().Status; got != StatusEmpty {
		t.Fatalf("status %v, want EMPTY", got)
	}
}

// Found end to end (three masters campaigning at first boot never elected
// anyone): a candidate's promise to itself is a lease, and when its campaign
// failed it kept that lease, so every candidate refused every other for
// LeaseTicks, campaigned again as soon as it lapsed, and so on forever. A
// failed campaign must drop the lease the candidate granted itself.
func TestFailedCampaignDropsOwnLease(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	req := only(t, startCampaign(t, c, s), MsgPromiseRequest)
	// Replica 2 campaigned at the same time and refuses us.
	rej := Message{Type: MsgPromiseResponse, From: 2, To: 1, Implicit: true, Proposal: Proposal{req.Proposal.Round, 2},
		Result: ResultReject, Reason: "replica 2 holds a lease from coordinator 2"}
	step(t, c, s, rej)
	if got := c.Status().Role; got != RoleFollower {
		t.Fatalf("role after a refused campaign: %v, want follower", got)
	}
	if got := c.Status().Leader; got != 0 {
		t.Fatalf("leader after a refused campaign: %d, want none", got)
	}
	// Replica 3 now campaigns: it must get our promise.
	p3 := Message{Type: MsgPromiseRequest, From: 3, To: 1, Proposal: Proposal{req.Proposal.Round + 1, 3}, Implicit: true}
	if got := only(t, step(t, c, s, p3), MsgPromiseResponse); got.Result != ResultAccept {
		t.Fatalf("promise to another candidate after our campaign failed: %v %q, want accept", got.Result, got.Reason)
	}
}

// Found by the chaos harness (anomaly A1 in docs/reliability.md): a master
// that restarted campaigned and won with the live coordinator's own replica
// as its second vote. The coordinator granted itself a lease when it
// campaigned, never renewed it, and once LeaseTicks had passed its replica
// promised the newcomer while the coordinator still held a lease from the
// other voters: two leaders could each believe they lead. A coordinator's
// replica refuses every other proposer for as long as it coordinates.
func TestCoordinatorReplicaRefusesOtherProposers(t *testing.T) {
	t.Parallel()
	c, s := electedCore(t, testMembership(1, 2, 3))
	prop := c.Status().Proposal
	for range 3 * testConfig(1).LeaseTicks {
		c.Tick()
		for _, m := range func() []Message { m, _ := drain(t, c, s); return m }() {
			if m.Type == MsgHeartbeat {
				// Replica 2 keeps acknowledging: the lease stays live.
				step(t, c, s, Message{Type: MsgHeartbeatResponse, From: 2, To: 1, Proposal: prop, Begin: m.Begin, Result: ResultAccept, Status: StatusVoting, End: m.End})
			}
		}
	}
	if c.Status().Role != RoleCoordinator {
		t.Fatalf("lost the role while a quorum acknowledged: %+v", c.Status())
	}
	req := Message{Type: MsgPromiseRequest, From: 3, To: 1, Proposal: Proposal{prop.Round + 5, 3}, Implicit: true}
	got := only(t, step(t, c, s, req), MsgPromiseResponse)
	if got.Result != ResultReject {
		t.Fatalf("the coordinator's replica answered %v to another proposer, want a rejection", got.Result)
	}
	if s.hs.Promised != prop {
		t.Fatalf("the coordinator's replica promised %v, want its own %v kept", s.hs.Promised, prop)
	}
}

// Found by the chaos harness (anomaly A1): a follower's master restarted and
// campaigned before it heard the live coordinator's heartbeat; its replica
// promised its own higher proposal and refused the coordinator's next write,
// which deposed a healthy leader. After a restart a replica promises no one,
// itself included, for LeaseTicks: it may have renewed a lease just before.
func TestRestartedReplicaHonoursUnknownLease(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{4, 2}, testMembership(1, 2, 3))
	cfg := testConfig(1)
	cfg.StartWithLease = true
	c := newTestCore(t, cfg, s)
	if err := c.Campaign(); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("campaign right after a restart: %v, want ErrLeaseHeld", err)
	}
	req := Message{Type: MsgPromiseRequest, From: 3, To: 1, Proposal: Proposal{9, 3}, Implicit: true}
	// IGNORED, not REJECT: the candidate may still win with the other voters.
	if got := only(t, step(t, c, s, req), MsgPromiseResponse); got.Result != ResultIgnored {
		t.Fatalf("promise right after a restart: %v, want IGNORED", got.Result)
	}
	if s.hs.Promised != (Proposal{4, 2}) {
		t.Fatalf("promise changed during the start-up lease: %v", s.hs.Promised)
	}
	// The live coordinator's heartbeat is accepted and takes over the lease.
	hb := only(t, step(t, c, s, Message{Type: MsgHeartbeat, From: 2, Proposal: Proposal{4, 2}}), MsgHeartbeatResponse)
	if hb.Result != ResultAccept {
		t.Fatalf("heartbeat of the live coordinator after a restart: %v, want accept", hb.Result)
	}
	for range testConfig(1).LeaseTicks {
		c.Tick()
	}
	drain(t, c, s)
	if got := only(t, step(t, c, s, req), MsgPromiseResponse); got.Result != ResultAccept {
		t.Fatalf("promise once the lease lapsed: %v, want accept", got.Result)
	}
}

// A campaign wins with a quorum of accepts although a restarted voter answers
// IGNORED (its start-up lease): failover must not wait for the killed
// leader's restarted replica.
func TestCampaignWinsDespiteRestartedVoter(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	req := only(t, startCampaign(t, c, s), MsgPromiseRequest)
	step(t, c, s, Message{Type: MsgPromiseResponse, From: 2, To: 1, Proposal: req.Proposal, Implicit: true, Result: ResultIgnored, Status: StatusVoting,
		Reason: "replica 2 restarted and waits out a lease it may have renewed"})
	if got := c.Status().Role; got != RoleCampaigning {
		t.Fatalf("role after one IGNORED: %v, want still campaigning", got)
	}
	step(t, c, s, Message{Type: MsgPromiseResponse, From: 3, To: 1, Proposal: req.Proposal, Implicit: true, Result: ResultAccept, End: 1, Status: StatusVoting})
	if got := c.Status().Role; got != RoleCoordinator {
		t.Fatalf("role after a quorum of accepts: %v, want coordinator", got)
	}
}
