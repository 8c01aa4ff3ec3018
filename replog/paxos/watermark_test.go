package paxos

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// savedAction is what the watermark tests compare of a saved action.
type savedAction struct {
	Position Position
	Learned  bool
	Data     string
}

func savedActions(as []Action) []savedAction {
	var out []savedAction
	for _, a := range as {
		out = append(out, savedAction{Position: a.Position, Learned: a.Learned, Data: string(a.Entry.Data)})
	}
	return out
}

// acceptFrom2 has follower c accept the writes of proposal prop from
// replica 2, saved and synced.
func acceptFrom2(t *testing.T, c *Core, s *memStore, prop Proposal, ws ...Action) {
	t.Helper()
	got := only(t, step(t, c, s, Message{Type: MsgWriteRequest, From: 2, To: 1, Proposal: prop, Actions: ws}), MsgWriteResponse)
	if got.Result != ResultAccept {
		t.Fatalf("write of %d actions at proposal %v: %v", len(ws), prop, got.Result)
	}
}

func learnedFrom2(as ...Action) Message {
	for i := range as {
		as[i].Learned = true
	}
	return Message{Type: MsgLearned, From: 2, To: 1, Cluster: testCluster, Actions: as}
}

// TestLearnedWatermark: a position learned in order whose stored action
// already holds the chosen value costs no action, only the learned
// watermark in the hard state; a position whose stored action holds
// another value or nothing, or one learned out of order, is written whole
// with its learned mark.
func TestLearnedWatermark(t *testing.T) {
	t.Parallel()
	p5, p6 := Proposal{5, 2}, Proposal{6, 3}
	tests := []struct {
		name     string
		accepted []Action // written by replica 2 at p5 and accepted first
		learned  []Action // then learned, in one broadcast
		want     []savedAction
		wantTo   Position // HardState.LearnedTo of the Ready
		onlyHS   bool     // Ready.LearnedToOnly
	}{
		{
			name:     "same value accepted",
			accepted: []Action{appendAt(1, p5, "a"), appendAt(2, p5, "b")},
			learned:  []Action{appendAt(1, p5, "a"), appendAt(2, p5, "b")},
			wantTo:   3,
			onlyHS:   true,
		},
		{
			name:     "same bytes accepted at a lower proposal",
			accepted: []Action{appendAt(1, p5, "a")},
			learned:  []Action{appendAt(1, p6, "a")},
			wantTo:   2,
			onlyHS:   true,
		},
		{
			name:     "another value accepted",
			accepted: []Action{appendAt(1, p5, "a")},
			learned:  []Action{appendAt(1, p6, "z")},
			want:     []savedAction{{Position: 1, Learned: true, Data: "z"}},
			wantTo:   2,
			onlyHS:   true,
		},
		{
			name:    "nothing accepted",
			learned: []Action{appendAt(1, p6, "z")},
			want:    []savedAction{{Position: 1, Learned: true, Data: "z"}},
			wantTo:  2,
			onlyHS:  true,
		},
		{
			name:     "mixed: only the differing position is written",
			accepted: []Action{appendAt(1, p5, "a"), appendAt(2, p5, "b"), appendAt(3, p5, "c")},
			learned:  []Action{appendAt(1, p5, "a"), appendAt(2, p6, "y"), appendAt(3, p5, "c")},
			want:     []savedAction{{Position: 2, Learned: true, Data: "y"}},
			wantTo:   4,
			onlyHS:   true,
		},
		{
			name:     "out of order: marked per action, the watermark waits",
			accepted: []Action{appendAt(1, p5, "a"), appendAt(2, p5, "b")},
			learned:  []Action{appendAt(2, p5, "b")},
			want:     []savedAction{{Position: 2, Learned: true, Data: "b"}},
			wantTo:   1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
			c := newTestCore(t, testConfig(1), s)
			if len(tc.accepted) > 0 {
				acceptFrom2(t, c, s, p5, tc.accepted...)
			}
			if err := c.Step(learnedFrom2(tc.learned...)); err != nil {
				t.Fatal(err)
			}
			rd := c.Ready()
			if diff := cmp.Diff(tc.want, savedActions(rd.Actions)); diff != "" {
				t.Errorf("saved actions (-want +got):\n%s", diff)
			}
			var gotTo Position
			if rd.HardState != nil {
				gotTo = rd.HardState.LearnedTo
			} else {
				gotTo = s.hs.LearnedTo
			}
			if gotTo != tc.wantTo || rd.LearnedToOnly != tc.onlyHS {
				t.Errorf("learned watermark %d (hard state only for it: %v), want %d (%v)", gotTo, rd.LearnedToOnly, tc.wantTo, tc.onlyHS)
			}
			if got := c.Status().LearnedTo; got != tc.wantTo {
				t.Errorf("core learned-to %d, want %d", got, tc.wantTo)
			}
			if rd.MustSync {
				t.Errorf("a batch of learned marks and the watermark asks for a sync")
			}
			s.save(rd)
			s.sync()
			c.Advance(rd)
			drain(t, c, s)
			// Whatever was or was not written, storage agrees with the
			// core: below the watermark, the learned value.
			for _, l := range tc.learned {
				a, ok := s.acts[l.Position]
				learned := ok && (a.Learned || l.Position < s.hs.LearnedTo)
				if !learned || string(a.Entry.Data) != string(l.Entry.Data) {
					t.Errorf("position %d stored as %+v (watermark %d), learned %v; want %q learned", l.Position, a, s.hs.LearnedTo, learned, l.Entry.Data)
				}
			}
		})
	}
}

// TestLearnedWatermarkAfterRestart: a replica restarted after learning
// reads the positions below its saved watermark as learned (delivered
// again, served to a catching-up peer, never overwritten) and the accepted
// position above it as not learned.
func TestLearnedWatermarkAfterRestart(t *testing.T) {
	t.Parallel()
	p5 := Proposal{5, 2}
	s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
	c := newTestCore(t, testConfig(1), s)
	acceptFrom2(t, c, s, p5, appendAt(1, p5, "a"), appendAt(2, p5, "b"), appendAt(3, p5, "c"))
	step(t, c, s, learnedFrom2(appendAt(1, p5, "a"), appendAt(2, p5, "b")))
	for p := Position(1); p <= 3; p++ {
		if s.acts[p].Learned {
			t.Fatalf("position %d was rewritten with a learned mark: %+v", p, s.acts[p])
		}
	}
	if s.hs.LearnedTo != 3 {
		t.Fatalf("saved watermark %d, want 3", s.hs.LearnedTo)
	}

	c, err := New(testConfig(1), s)
	if err != nil {
		t.Fatal(err)
	}
	rd := c.Ready()
	var delivered []Position
	for _, a := range rd.Learned {
		delivered = append(delivered, a.Position)
	}
	if diff := cmp.Diff([]Position{0, 1, 2}, delivered); diff != "" {
		t.Errorf("delivered after restart (-want +got):\n%s", diff)
	}
	s.save(rd)
	s.sync()
	c.Advance(rd)
	drain(t, c, s)
	if got := c.Status().LearnedTo; got != 3 {
		t.Fatalf("learned-to %d after restart, want 3", got)
	}

	t.Run("catch-up serves the learned positions only", func(t *testing.T) {
		got := only(t, step(t, c, s, Message{Type: MsgCatchupRequest, From: 2, To: 1, Position: 1, End: 10}), MsgCatchupResponse)
		want := []savedAction{{Position: 1, Learned: true, Data: "a"}, {Position: 2, Learned: true, Data: "b"}}
		if diff := cmp.Diff(want, savedActions(got.Actions)); diff != "" {
			t.Errorf("catch-up answer (-want +got):\n%s", diff)
		}
	})
	t.Run("a learned position is not overwritten, an accepted one is", func(t *testing.T) {
		p7 := Proposal{7, 3}
		got := step(t, c, s, Message{Type: MsgWriteRequest, From: 3, To: 1, Proposal: p7, Actions: []Action{appendAt(2, p7, "other")}})
		none(t, got, MsgWriteResponse)
		if string(s.acts[2].Entry.Data) != "b" {
			t.Errorf("learned position 2 now holds %+v", s.acts[2])
		}
		ack := only(t, step(t, c, s, Message{Type: MsgWriteRequest, From: 3, To: 1, Proposal: p7, Actions: []Action{appendAt(3, p7, "other")}}), MsgWriteResponse)
		if ack.Result != ResultAccept || string(s.acts[3].Entry.Data) != "other" {
			t.Errorf("write at the unlearned position 3: %v, stored %+v", ack.Result, s.acts[3])
		}
	})
}

// TestLearnedWatermarkLostInCrash: a crash that keeps the accepted actions
// but not the hard state carrying the watermark leaves the positions
// unlearned, never learned with a value they do not hold; learning them
// again works as the first time. With the learned value differing from the
// accepted one, the lost batch held the whole learned action too: the
// accepted value left behind is not taken as learned.
func TestLearnedWatermarkLostInCrash(t *testing.T) {
	t.Parallel()
	p5, p6 := Proposal{5, 2}, Proposal{6, 3}
	tests := []struct {
		name    string
		learned []Action
	}{
		{name: "same value", learned: []Action{appendAt(1, p5, "a"), appendAt(2, p5, "b")}},
		{name: "another value", learned: []Action{appendAt(1, p6, "x"), appendAt(2, p6, "y")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := votingStore(1, Proposal{}, testMembership(1, 2, 3))
			c := newTestCore(t, testConfig(1), s)
			acceptFrom2(t, c, s, p5, appendAt(1, p5, "a"), appendAt(2, p5, "b"))
			if err := c.Step(learnedFrom2(tc.learned...)); err != nil {
				t.Fatal(err)
			}
			rd := c.Ready()
			if rd.HardState == nil || rd.HardState.LearnedTo != 3 || rd.MustSync {
				t.Fatalf("Ready after learning: hard state %+v, MustSync %v; want watermark 3, unsynced", rd.HardState, rd.MustSync)
			}
			s.save(rd) // not synced: the crash loses it
			s.crash(0)
			if s.hs.LearnedTo != 1 {
				t.Fatalf("durable watermark %d after the crash, want 1", s.hs.LearnedTo)
			}

			c, err := New(testConfig(1), s)
			if err != nil {
				t.Fatal(err)
			}
			drain(t, c, s)
			if got := c.Status().LearnedTo; got != 1 {
				t.Fatalf("learned-to %d after restart, want 1", got)
			}
			got := only(t, step(t, c, s, Message{Type: MsgCatchupRequest, From: 3, To: 1, Position: 1, End: 10}), MsgCatchupResponse)
			if len(got.Actions) != 0 {
				t.Fatalf("catch-up answer after the crash serves %+v, want nothing", savedActions(got.Actions))
			}

			if err := c.Step(learnedFrom2(tc.learned...)); err != nil {
				t.Fatal(err)
			}
			rd = c.Ready()
			var delivered []savedAction
			for _, a := range rd.Learned {
				delivered = append(delivered, savedAction{Position: a.Position, Learned: a.Learned, Data: string(a.Entry.Data)})
			}
			want := []savedAction{
				{Position: 1, Learned: true, Data: string(tc.learned[0].Entry.Data)},
				{Position: 2, Learned: true, Data: string(tc.learned[1].Entry.Data)},
			}
			if diff := cmp.Diff(want, delivered); diff != "" {
				t.Errorf("delivered when learned again (-want +got):\n%s", diff)
			}
			s.save(rd)
			s.sync()
			c.Advance(rd)
			drain(t, c, s)
			for _, w := range want {
				a := s.acts[w.Position]
				if !a.Learned && w.Position >= s.hs.LearnedTo || string(a.Entry.Data) != w.Data {
					t.Errorf("position %d stored as %+v (watermark %d), want %q learned", w.Position, a, s.hs.LearnedTo, w.Data)
				}
			}
		})
	}
}
