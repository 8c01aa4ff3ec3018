package paxos

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The driver (replog, awaitSave) takes a second Ready while the first is
// still being saved, and advances both in order once saved. The core must
// then count its own accept of a write only once the Ready holding it is
// advanced, not when an earlier one is, and deliver learned positions once,
// in position order, across the two Readies.
func TestReviewTwoReadiesInFlightAdvanceInOrder(t *testing.T) {
	t.Parallel()
	c, s := electedCore(t, testMembership(1, 2, 3))
	first, err := c.Propose([]Entry{{Type: EntryAppend, Data: []byte("a")}})
	if err != nil {
		t.Fatal(err)
	}
	r1 := c.Ready() // holds the coordinator's accept of first; its save is in flight

	// While r1 is saved, a heartbeat answer reports a leftover position past
	// the coordinator's end: it writes a NOP there, in a second Ready.
	hb := Message{Type: MsgHeartbeatResponse, From: 2, To: 1, Cluster: testCluster, Proposal: c.proposal,
		Begin: Position(c.now), Position: first, End: first + 2, Result: ResultAccept, Status: StatusVoting}
	if err := c.Step(hb); err != nil {
		t.Fatal(err)
	}
	r2 := c.Ready()
	if len(r2.Actions) != 1 || r2.Actions[0].Position != first+1 || r2.Actions[0].Entry.Type != EntryNop || !r2.MustSync {
		t.Fatalf("second Ready: actions %+v, MustSync %v; want the NOP at %d, synced", r2.Actions, r2.MustSync, first+1)
	}
	// Replica 2 accepts both positions before either Ready is saved.
	ack := Message{Type: MsgWriteResponse, From: 2, To: 1, Cluster: testCluster, Proposal: c.proposal,
		Position: first, End: first + 2, Result: ResultAccept, Status: StatusVoting}
	if err := c.Step(ack); err != nil {
		t.Fatal(err)
	}
	if got := c.Status().LearnedTo; got != first {
		t.Fatalf("learned-to %d with neither Ready saved, want %d", got, first)
	}

	s.save(r1)
	s.sync()
	c.Advance(r1)
	if got := c.Status().LearnedTo; got != first+1 {
		t.Fatalf("learned-to %d once r1 is saved (r2, holding the NOP's own accept, is not), want %d", got, first+1)
	}
	s.save(r2)
	s.sync()
	c.Advance(r2)
	if got := c.Status().LearnedTo; got != first+2 {
		t.Fatalf("learned-to %d once r2 is saved too, want %d", got, first+2)
	}
	var learned []Position
	for _, rd := range []Ready{r1, r2} {
		for _, a := range rd.Learned {
			learned = append(learned, a.Position)
		}
	}
	for c.HasReady() {
		rd := c.Ready()
		for _, a := range rd.Learned {
			learned = append(learned, a.Position)
		}
		s.save(rd)
		s.sync()
		c.Advance(rd)
	}
	if diff := cmp.Diff([]Position{first, first + 1}, learned); diff != "" {
		t.Errorf("learned positions delivered (-want +got):\n%s", diff)
	}
}
