package paxos

import (
	"fmt"
	"testing"
)

// readCounter counts the point reads a core makes of its storage.
type readCounter struct {
	*memStore
	reads int
}

func (r *readCounter) Action(p Position) (Action, bool, error) {
	r.reads++
	return r.memStore.Action(p)
}

// drainAll saves every pending Ready of c into s and returns all its
// messages, the coordinator's early write requests included.
func drainAll(t *testing.T, c *Core, s *memStore) []Message {
	t.Helper()
	var msgs []Message
	for c.HasReady() {
		rd := c.Ready()
		s.save(rd)
		s.sync()
		msgs = append(msgs, rd.Early...)
		msgs = append(msgs, rd.Messages...)
		c.Advance(rd)
	}
	return msgs
}

// TestLearningJustAcceptedReadsNoStorage: the coordinator counting a
// follower's accepts and the follower taking the learned broadcast learn
// positions whose accepts the core itself saved; they need no storage read.
func TestLearningJustAcceptedReadsNoStorage(t *testing.T) {
	t.Parallel()
	m := testMembership(1, 2, 3)
	s1 := votingStore(1, Proposal{}, m)
	r1 := &readCounter{memStore: s1}
	c1, err := New(testConfig(1), r1)
	if err != nil {
		t.Fatal(err)
	}
	drain(t, c1, s1)
	req := only(t, startCampaign(t, c1, s1), MsgPromiseRequest)
	step(t, c1, s1, Message{Type: MsgPromiseResponse, From: 2, To: 1, Proposal: req.Proposal, Implicit: true, Result: ResultAccept, End: 1, Status: StatusVoting})
	drain(t, c1, s1)
	if c1.Status().Role != RoleCoordinator {
		t.Fatalf("not elected: %+v", c1.Status())
	}
	s2 := votingStore(2, Proposal{}, m)
	r2 := &readCounter{memStore: s2}
	c2, err := New(testConfig(2), r2)
	if err != nil {
		t.Fatal(err)
	}
	drain(t, c2, s2)
	// Bring the follower to the coordinator's end first (the election's
	// no-op), so what follows is the steady state.
	deliver := func(from *Core, msgs []Message, to *Core, s *memStore) []Message {
		var out []Message
		for _, m := range msgs {
			if m.To != 0 && m.To != to.id || m.From != from.id && m.From != 0 {
				continue
			}
			m.From, m.Cluster = from.id, testCluster
			if err := to.Step(m); err != nil {
				t.Fatal(err)
			}
			out = append(out, drainAll(t, to, s)...)
		}
		return out
	}
	const n = 3
	for round := range 3 {
		var es []Entry
		for i := range n {
			es = append(es, Entry{Type: EntryAppend, Data: fmt.Appendf(nil, "r%d-%d", round, i)})
		}
		first, err := c1.Propose(es)
		if err != nil {
			t.Fatal(err)
		}
		writes := drainAll(t, c1, s1)
		r1.reads, r2.reads = 0, 0
		answers := deliver(c1, writes, c2, s2)
		learned := deliver(c2, answers, c1, s1)
		deliver(c1, learned, c2, s2)
		if round == 0 {
			continue // the first round may read the election's positions
		}
		if got, want := c1.Status().LearnedTo, first+n; got != want {
			t.Fatalf("round %d: coordinator learned to %d, want %d", round, got, want)
		}
		if got, want := c2.Status().LearnedTo, first+n; got != want {
			t.Fatalf("round %d: follower learned to %d, want %d", round, got, want)
		}
		if invariantsEnabled {
			continue // the self-checks read storage
		}
		if r1.reads != 0 || r2.reads != 0 {
			t.Errorf("round %d: storage reads: coordinator %d, follower %d; want none", round, r1.reads, r2.reads)
		}
	}
}
