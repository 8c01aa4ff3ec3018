package replogtest

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
)

func TestStorageConformance(t *testing.T) {
	t.Parallel()
	RunStorageTests(t, func(*testing.T) replog.Storage { return NewStorage() })
}

func TestStorageReopen(t *testing.T) {
	t.Parallel()
	RunReopenTests(t, func(*testing.T) func() (replog.Storage, error) {
		var last *Storage
		return func() (replog.Storage, error) {
			if last == nil {
				last = NewStorage()
			} else {
				last = last.Crash()
			}
			return last, nil
		}
	})
}

func TestCrashKeepsOnlySynced(t *testing.T) {
	t.Parallel()
	st := NewStorage()
	hs1 := paxos.HardState{Replica: 1, Status: paxos.StatusVoting}
	hs2 := paxos.HardState{Replica: 1, Status: paxos.StatusVoting, Promised: paxos.Proposal{Round: 2, Replica: 1}}
	steps := []replog.Batch{
		{HardState: &hs1, Actions: actionsAt(1), Sync: true},
		{Actions: actionsAt(2)},             // lost
		{HardState: &hs2, TruncateBelow: 2}, // lost
	}
	for _, b := range steps {
		mustSave(t, st, b)
	}
	crashed := st.Crash()
	if _, err := st.InitialState(); !errors.Is(err, replog.ErrClosed) {
		t.Errorf("InitialState on the crashed store = %v, want ErrClosed", err)
	}
	hs, err := crashed.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(hs1, hs, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("hard state after crash (-want +got):\n%s", diff)
	}
	wantActions(t, crashed, 0, 10, 0, actionsAt(1))

	// A later synced save makes the earlier unsynced ones durable too.
	mustSave(t, crashed, replog.Batch{Actions: actionsAt(3)})
	mustSave(t, crashed, replog.Batch{Actions: actionsAt(4), Sync: true})
	again := crashed.Crash()
	wantActions(t, again, 0, 10, 0, actionsAt(1, 3, 4))
	if got := len(crashed.Saves()); got != 2 {
		t.Errorf("recorded %d saves, want 2", got)
	}
}

func TestFailNextSave(t *testing.T) {
	t.Parallel()
	st := NewStorage()
	boom := errors.New("disk on fire")
	st.FailNextSave(boom)
	if err := st.Save(replog.Batch{Actions: actionsAt(1), Sync: true}); !errors.Is(err, boom) {
		t.Fatalf("Save = %v, want %v", err, boom)
	}
	wantLast(t, st, 0, false)
	mustSave(t, st, replog.Batch{Actions: actionsAt(1), Sync: true})
	wantLast(t, st, 1, true)
	saves := st.Saves()
	if len(saves) != 2 || saves[0].Err == nil || saves[1].Err != nil || saves[0].Seq >= saves[1].Seq {
		t.Errorf("saves = %+v, want a failed one then a good one, in order", saves)
	}
}
