package paxos

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Known weakness R1 (docs/reliability.md): a replica cut off from the others
// for longer than a lease campaigns; when the partition heals, its campaign
// must not depose the live coordinator. Without the pre-vote it did: the
// candidate promised itself durably, its replica then refused the
// coordinator's next heartbeat, and any REJECT deposes a coordinator. The
// case without the pre-vote shows that this test catches the bug.
func TestPreVoteSparesLiveCoordinator(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		noPreVote  bool
		wantLeader bool // replica 1 still coordinates and nobody's promise rose
	}{
		{name: "pre-vote", wantLeader: true},
		{name: "without pre-vote", noPreVote: true, wantLeader: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := Config{Quorum: 2, AutoInitialize: true, HeartbeatTicks: 1, LeaseTicks: 5, RetryTicks: 3, Window: 16, MaxBatchBytes: 1 << 20, noPreVote: tc.noPreVote}
			cl := newCluster(cfg, func(format string, args ...any) { t.Fatalf(format, args...) })
			var lost []ReplicaID
			cl.onEvent = func(n *node, e Event) {
				if _, ok := e.(LostLeadership); ok {
					lost = append(lost, n.id)
				}
			}
			ticks := func(k int) {
				for range k {
					cl.tick()
					cl.stabilize()
				}
			}
			for _, id := range []ReplicaID{1, 2, 3} {
				cl.add(id)
			}
			ticks(10)
			if err := cl.nodes[1].core.Campaign(); err != nil {
				t.Fatal(err)
			}
			cl.process(cl.nodes[1])
			cl.stabilize()
			leader := cl.nodes[1].core.Status()
			if leader.Role != RoleCoordinator {
				t.Fatalf("replica 1 not elected: %+v", leader)
			}
			// Replica 3 is cut off; its lease lapses while 1 and 2 renew theirs.
			cl.cut[[2]ReplicaID{3, 1}], cl.cut[[2]ReplicaID{3, 2}] = true, true
			cl.cut[[2]ReplicaID{1, 3}], cl.cut[[2]ReplicaID{2, 3}] = true, true
			ticks(8)
			c3 := cl.nodes[3].core
			if err := c3.Campaign(); err != nil {
				t.Fatalf("campaign of the cut-off replica: %v", err)
			}
			cl.process(cl.nodes[3])
			ticks(4)
			clear(cl.cut)
			ticks(2 * cfg.LeaseTicks)

			var promised []Proposal
			for _, id := range []ReplicaID{1, 2, 3} {
				hs, _, _ := cl.nodes[id].store.durableState(0)
				promised = append(promised, hs.Promised)
			}
			kept := cl.nodes[1].core.Status().Role == RoleCoordinator && len(lost) == 0 &&
				cmp.Equal(promised, []Proposal{leader.Proposal, leader.Proposal, leader.Proposal})
			if kept != tc.wantLeader {
				t.Errorf("coordinator kept = %v, want %v: replica 1 is %v, lost leadership: %v, durable promises of 1, 2, 3: %v (the coordinator's %v)",
					kept, tc.wantLeader, cl.nodes[1].core.Status().Role, lost, promised, leader.Proposal)
			}
		})
	}
}

// The pre-vote answer applies the rule of the implicit promise and changes
// nothing: no promise, no lease, nothing to persist.
func TestPreVoteAnswerChangesNothing(t *testing.T) {
	t.Parallel()
	lease := Proposal{4, 2}
	tests := []struct {
		name   string
		status Status
		setup  func(t *testing.T, c *Core, s *memStore)
		start  bool // Config.StartWithLease
		want   Message
	}{
		{
			name: "no lease",
			want: Message{Result: ResultAccept, Proposal: Proposal{5, 3}},
		},
		{
			name: "lease of a live coordinator",
			setup: func(t *testing.T, c *Core, s *memStore) {
				step(t, c, s, Message{Type: MsgHeartbeat, From: 2, To: 1, Proposal: lease})
			},
			want: Message{Result: ResultReject, Proposal: lease, Reason: "replica 1 holds a lease from coordinator 2", Position: 5},
		},
		{
			name:  "start-up lease",
			start: true,
			want:  Message{Result: ResultIgnored, Proposal: Proposal{5, 3}, Reason: "replica 1 restarted and waits out a lease it may have renewed", Position: 5},
		},
		{
			name: "promised higher, lease lapsed",
			setup: func(t *testing.T, c *Core, s *memStore) {
				step(t, c, s, Message{Type: MsgHeartbeat, From: 2, To: 1, Proposal: Proposal{7, 2}})
				for range testConfig(1).LeaseTicks {
					c.Tick()
				}
				drain(t, c, s)
			},
			want: Message{Result: ResultReject, Proposal: Proposal{7, 2}},
		},
		{
			name:   "not voting",
			status: StatusRecovering,
			want:   Message{Result: ResultIgnored, Proposal: Proposal{5, 3}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := votingStore(1, Proposal{3, 2}, testMembership(1, 2, 3))
			if tc.status != 0 {
				s.hs.Status = tc.status
			}
			cfg := testConfig(1)
			cfg.StartWithLease = tc.start
			c := newTestCore(t, cfg, s)
			if tc.setup != nil {
				tc.setup(t, c, s)
			}
			hs := s.hs
			leaseKnown, leaseProp, leaseAt := c.leaseKnown, c.lease, c.leaseAt
			req := withCluster(Message{Type: MsgPreVoteRequest, From: 3, To: 1, Proposal: Proposal{5, 3}, Begin: 11})
			if err := c.Step(req); err != nil {
				t.Fatal(err)
			}
			rd := c.Ready()
			if rd.HardState != nil || len(rd.Actions) > 0 || rd.MustSync {
				t.Errorf("pre-vote %+v: Ready persists hard state %+v, actions %v, sync %v; want nothing", req, rd.HardState, rd.Actions, rd.MustSync)
			}
			got := only(t, rd.Messages, MsgPreVoteResponse)
			want := tc.want
			want.Type, want.Cluster, want.From, want.To, want.Begin = MsgPreVoteResponse, testCluster, 1, 3, 11
			want.Status = s.hs.Status
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("pre-vote %+v: answer (-want +got):\n%s", req, diff)
			}
			c.Advance(rd)
			if diff := cmp.Diff(hs, c.hs); diff != "" {
				t.Errorf("hard state changed by the pre-vote (-before +after):\n%s", diff)
			}
			if c.leaseKnown != leaseKnown || c.lease != leaseProp || c.leaseAt != leaseAt {
				t.Errorf("lease changed by the pre-vote: %v %v at %d, before %v %v at %d", c.leaseKnown, c.lease, c.leaseAt, leaseKnown, leaseProp, leaseAt)
			}
		})
	}
}

// preVoteAnswer is replica from's answer to the pre-vote request req.
func preVoteAnswer(req Message, from ReplicaID, res Result, prop Proposal, reason string) Message {
	if prop.IsZero() {
		prop = req.Proposal
	}
	return withCluster(Message{Type: MsgPreVoteResponse, From: from, To: 1, Proposal: prop, Begin: req.Begin, Result: res, Status: StatusVoting, Reason: reason})
}

// A candidate that a quorum refuses by lease gives up without promising
// anything, itself included.
func TestCampaignPreVoteRefusedByQuorum(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{3, 2}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	if err := c.Campaign(); err != nil {
		t.Fatal(err)
	}
	msgs, _ := drain(t, c, s)
	req := only(t, msgs, MsgPreVoteRequest)
	var sent []Message
	var events []Event
	for _, from := range []ReplicaID{2, 3} {
		if err := c.Step(preVoteAnswer(req, from, ResultReject, Proposal{3, 2}, "holds a lease from coordinator 2")); err != nil {
			t.Fatal(err)
		}
		m, e := drain(t, c, s)
		sent, events = append(sent, m...), append(events, e...)
	}
	if diff := cmp.Diff([]Event{CampaignFailed{By: Proposal{3, 2}, Reason: "pre-vote: holds a lease from coordinator 2"}}, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	none(t, sent, MsgPromiseRequest)
	if s.hs.Promised != (Proposal{3, 2}) || c.Status().Role != RoleFollower {
		t.Errorf("after a refused pre-vote: promised %v, role %v; want 3.2 kept and follower", s.hs.Promised, c.Status().Role)
	}
}

// One refusal out of three voters leaves the campaign running: the next
// round starts one tick after the refuser's lease lapses (sooner than
// RetryTicks), only answers to that round count, and a quorum of them starts
// the promise round at once.
func TestCampaignPreVoteRetriesAfterRefusal(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{3, 2}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	if err := c.Campaign(); err != nil {
		t.Fatal(err)
	}
	msgs, _ := drain(t, c, s)
	first := only(t, msgs, MsgPreVoteRequest)
	refusal := preVoteAnswer(first, 2, ResultReject, Proposal{3, 2}, "holds a lease from coordinator 2")
	refusal.Position = 1 // its lease lapses in one tick
	none(t, step(t, c, s, refusal), MsgPromiseRequest)
	if got := c.Status().Role; got != RoleCampaigning {
		t.Fatalf("role after one refusal of three: %v, want campaigning", got)
	}
	c.Tick()
	none(t, func() []Message { m, _ := drain(t, c, s); return m }(), MsgPreVoteRequest)
	c.Tick() // RetryTicks is 3
	again, _ := drain(t, c, s)
	second := only(t, again, MsgPreVoteRequest)
	if second.Begin != first.Begin+2 || second.Proposal != first.Proposal {
		t.Fatalf("retried pre-vote %+v after %+v: want a new round two ticks later with the same proposal", second, first)
	}
	// A yes to the first round no longer counts.
	none(t, step(t, c, s, preVoteAnswer(first, 3, ResultAccept, Proposal{}, "")), MsgPromiseRequest)
	got := only(t, step(t, c, s, preVoteAnswer(second, 3, ResultAccept, Proposal{}, "")), MsgPromiseRequest)
	if got.Proposal != first.Proposal || !got.Implicit || s.hs.Promised != first.Proposal {
		t.Errorf("promise round %+v, durable promise %v; want the implicit promise of %v", got, s.hs.Promised, first.Proposal)
	}
}

// A pre-vote answer that reports a higher promise ends the campaign as the
// promise round would have, and the next campaign proposes above it.
func TestCampaignPreVoteHigherPromise(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{3, 2}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	if err := c.Campaign(); err != nil {
		t.Fatal(err)
	}
	msgs, _ := drain(t, c, s)
	req := only(t, msgs, MsgPreVoteRequest)
	if err := c.Step(preVoteAnswer(req, 3, ResultReject, Proposal{9, 3}, "")); err != nil {
		t.Fatal(err)
	}
	_, events := drain(t, c, s)
	if diff := cmp.Diff([]Event{CampaignFailed{By: Proposal{9, 3}}}, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if err := c.Campaign(); err != nil {
		t.Fatal(err)
	}
	msgs, _ = drain(t, c, s)
	if got := only(t, msgs, MsgPreVoteRequest).Proposal; got != (Proposal{10, 1}) {
		t.Errorf("next campaign's proposal %v, want 10.1", got)
	}
}

// Messages of a type this replica does not know (a newer peer's) are
// ignored, not fatal.
func TestUnknownMessageTypeIgnored(t *testing.T) {
	t.Parallel()
	s := votingStore(1, Proposal{3, 2}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	if err := c.Step(withCluster(Message{Type: MsgPreVoteResponse + 1, From: 2, To: 1, Proposal: Proposal{9, 2}, Result: ResultReject})); err != nil {
		t.Fatalf("step of an unknown message type: %v", err)
	}
	if c.HasReady() {
		t.Errorf("an unknown message type produced a Ready: %+v", c.Ready())
	}
}
