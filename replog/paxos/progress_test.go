package paxos

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCoordinatorReportsProgressFromHeartbeatAnswers(t *testing.T) {
	t.Parallel()
	m := testMembership(1, 2, 3)
	m.Members = append(m.Members, Member{ID: 4})
	c, s := electedCore(t, m)
	step(t, c, s, Message{Type: MsgHeartbeatResponse, From: 3, To: 1, Proposal: c.proposal, Position: 1, Status: StatusVoting, Result: ResultAccept})
	step(t, c, s, Message{Type: MsgHeartbeatResponse, From: 4, To: 1, Proposal: c.proposal, Position: 0, Status: StatusRecovering, Result: ResultIgnored})
	c.Tick()
	got := c.Progress()
	want := []Progress{
		{Replica: 3, Status: StatusVoting, LearnedTo: 1, Ago: 1},
		{Replica: 4, Status: StatusRecovering, LearnedTo: 0, Ago: 1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Progress() mismatch (-want +got):\n%s", diff)
	}
	c.Demote()
	if got := c.Progress(); got != nil {
		t.Errorf("Progress() after Demote = %v, want nil", got)
	}
}
