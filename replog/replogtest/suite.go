package replogtest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
)

// RunStorageTests runs the [replog.Storage] conformance suite. open must
// return a new, empty, open store; the suite closes it.
func RunStorageTests(t *testing.T, open func(t *testing.T) replog.Storage) {
	t.Helper()
	for _, tc := range storageTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := open(t)
			defer func() {
				if err := st.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			tc.run(t, st)
		})
	}
}

// RunReopenTests checks that synced state survives closing and reopening a
// store. newStore returns, for one new empty store, a function that opens it:
// the first call opens it empty, each later call opens it again after the
// suite closed the previous instance.
func RunReopenTests(t *testing.T, newStore func(t *testing.T) (open func() (replog.Storage, error))) {
	t.Helper()
	for _, tc := range reopenTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, newStore(t))
		})
	}
}

var cmpOpts = []cmp.Option{cmpopts.EquateEmpty()}

type storageTest struct {
	name string
	run  func(t *testing.T, st replog.Storage)
}

// appendAction is a learned append of data at p.
func appendAction(p paxos.Position, data string) paxos.Action {
	prop := paxos.Proposal{Round: 1, Replica: 1}
	return paxos.Action{
		Position:  p,
		Promised:  prop,
		Performed: prop,
		Learned:   true,
		Entry:     paxos.Entry{Type: paxos.EntryAppend, Data: []byte(data)},
	}
}

func actionsAt(ps ...paxos.Position) []paxos.Action {
	var out []paxos.Action
	for _, p := range ps {
		out = append(out, appendAction(p, fmt.Sprintf("value %d", p)))
	}
	return out
}

func mustSave(t *testing.T, st replog.Storage, b replog.Batch) {
	t.Helper()
	if err := st.Save(b); err != nil {
		t.Fatalf("Save(%+v): %v", b, err)
	}
}

func wantActions(t *testing.T, st replog.Storage, from, to paxos.Position, maxBytes int, want []paxos.Action) {
	t.Helper()
	got, err := st.Actions(from, to, maxBytes)
	if err != nil {
		t.Fatalf("Actions(%d, %d, %d): %v", from, to, maxBytes, err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("Actions(%d, %d, %d) (-want +got):\n%s", from, to, maxBytes, diff)
	}
}

func wantLast(t *testing.T, st replog.Storage, want paxos.Position, wantOK bool) {
	t.Helper()
	got, ok, err := st.LastPosition()
	if err != nil {
		t.Fatalf("LastPosition: %v", err)
	}
	if got != want || ok != wantOK {
		t.Errorf("LastPosition() = %d, %t; want %d, %t", got, ok, want, wantOK)
	}
}

func testHardState() paxos.HardState {
	return paxos.HardState{
		Replica:  0x1234567890,
		Cluster:  99,
		Status:   paxos.StatusVoting,
		Promised: paxos.Proposal{Round: 5, Replica: 0x1234567890},
		Membership: paxos.Membership{Cluster: 99, Members: []paxos.Member{
			{ID: 0x1234567890, Addr: "10.0.0.1:5051", Voter: true},
			{ID: 7, Addr: "10.0.0.2:5051"},
		}},
		ConfigAt:  3,
		Begin:     2,
		LearnedTo: 4,
	}
}

var storageTests = []storageTest{
	{"Empty", func(t *testing.T, st replog.Storage) {
		hs, err := st.InitialState()
		if err != nil {
			t.Fatalf("InitialState: %v", err)
		}
		if diff := cmp.Diff(paxos.HardState{}, hs, cmpOpts...); diff != "" {
			t.Errorf("InitialState of an empty store (-want +got):\n%s", diff)
		}
		if a, ok, err := st.Action(0); err != nil || ok {
			t.Errorf("Action(0) = %+v, %t, %v; want none", a, ok, err)
		}
		wantLast(t, st, 0, false)
		wantActions(t, st, 0, math.MaxUint64, 0, nil)
	}},
	{"HardStateRoundTrip", func(t *testing.T, st replog.Storage) {
		hs := testHardState()
		mustSave(t, st, replog.Batch{HardState: &hs, Sync: true})
		// A batch without a hard state leaves it alone.
		mustSave(t, st, replog.Batch{Actions: actionsAt(1), Sync: true})
		got, err := st.InitialState()
		if err != nil {
			t.Fatalf("InitialState: %v", err)
		}
		if diff := cmp.Diff(hs, got, cmpOpts...); diff != "" {
			t.Errorf("InitialState (-want +got):\n%s", diff)
		}
		hs2 := hs
		hs2.Promised.Round++
		hs2.Membership = paxos.Membership{}
		mustSave(t, st, replog.Batch{HardState: &hs2})
		got, err = st.InitialState()
		if err != nil {
			t.Fatalf("InitialState: %v", err)
		}
		if diff := cmp.Diff(hs2, got, cmpOpts...); diff != "" {
			t.Errorf("InitialState after overwrite (-want +got):\n%s", diff)
		}
	}},
	{"Upsert", func(t *testing.T, st replog.Storage) {
		mustSave(t, st, replog.Batch{Actions: actionsAt(3, 1, 2), Sync: true})
		promiseOnly := paxos.Action{Position: 2, Promised: paxos.Proposal{Round: 9, Replica: 4}}
		mustSave(t, st, replog.Batch{Actions: []paxos.Action{promiseOnly}, Sync: true})
		got, ok, err := st.Action(2)
		if err != nil || !ok {
			t.Fatalf("Action(2) = %t, %v; want found", ok, err)
		}
		if diff := cmp.Diff(promiseOnly, got, cmpOpts...); diff != "" {
			t.Errorf("Action(2) after upsert (-want +got):\n%s", diff)
		}
		wantActions(t, st, 0, 10, 0, []paxos.Action{appendAction(1, "value 1"), promiseOnly, appendAction(3, "value 3")})
		// The same position twice in one batch: the later one wins.
		mustSave(t, st, replog.Batch{Actions: []paxos.Action{appendAction(5, "a"), appendAction(5, "b")}, Sync: true})
		wantActions(t, st, 5, 6, 0, []paxos.Action{appendAction(5, "b")})
	}},
	{"EveryEntryKind", func(t *testing.T, st replog.Storage) {
		ms := &paxos.Membership{Cluster: 3, Members: []paxos.Member{{ID: 1, Addr: "a:1", Voter: true}}}
		as := []paxos.Action{
			{Position: 0, Learned: true, Performed: paxos.Proposal{Round: 1, Replica: 1}, Entry: paxos.Entry{Type: paxos.EntryConfig, Config: ms}},
			{Position: 1, Learned: true, Entry: paxos.Entry{Type: paxos.EntryNop, Tombstone: true}},
			{Position: 2, Entry: paxos.Entry{Type: paxos.EntryTruncate, To: 1}},
			{Position: 3, Entry: paxos.Entry{Type: paxos.EntrySnapshot, Data: bytes.Repeat([]byte("s"), 100_000)}},
			{Position: 4, Entry: paxos.Entry{Type: paxos.EntryAppend, Data: []byte{}}},
		}
		mustSave(t, st, replog.Batch{Actions: as, Sync: true})
		wantActions(t, st, 0, 5, 0, as)
	}},
	{"Ranges", func(t *testing.T, st replog.Storage) {
		mustSave(t, st, replog.Batch{Actions: actionsAt(2, 4, 6, 8), Sync: true})
		tests := []struct {
			from, to paxos.Position
			want     []paxos.Action
		}{
			{0, 2, nil},
			{0, 3, actionsAt(2)},
			{2, 8, actionsAt(2, 4, 6)},
			{3, 9, actionsAt(4, 6, 8)},
			{5, 5, nil},
			{6, 4, nil},
			{9, math.MaxUint64, nil},
			{0, math.MaxUint64, actionsAt(2, 4, 6, 8)},
		}
		for _, tt := range tests {
			wantActions(t, st, tt.from, tt.to, 0, tt.want)
		}
		for _, p := range []paxos.Position{0, 3, 9} {
			if a, ok, err := st.Action(p); err != nil || ok {
				t.Errorf("Action(%d) = %+v, %t, %v; want none", p, a, ok, err)
			}
		}
		wantLast(t, st, 8, true)
	}},
	{"MaxBytes", func(t *testing.T, st replog.Storage) {
		as := actionsAt(1, 2, 3, 4)
		mustSave(t, st, replog.Batch{Actions: as, Sync: true})
		one := replog.ActionSize(as[0]) // every one has the same size
		tests := []struct {
			maxBytes int
			want     []paxos.Action
		}{
			{0, as},
			{-1, as},
			{1, as[:1]}, // at least one
			{one, as[:1]},
			{2*one - 1, as[:1]},
			{2 * one, as[:2]},
			{3*one + 1, as[:3]},
			{100 * one, as},
		}
		for _, tt := range tests {
			wantActions(t, st, 0, 10, tt.maxBytes, tt.want)
		}
	}},
	{"Truncate", func(t *testing.T, st replog.Storage) {
		mustSave(t, st, replog.Batch{Actions: actionsAt(1, 2, 3, 4, 5), Sync: true})
		mustSave(t, st, replog.Batch{TruncateBelow: 3, Sync: true})
		wantActions(t, st, 0, 10, 0, actionsAt(3, 4, 5))
		if _, ok, _ := st.Action(2); ok {
			t.Errorf("Action(2) found after truncation below 3")
		}
		// Actions of the same batch are written first, then truncated.
		mustSave(t, st, replog.Batch{Actions: actionsAt(4, 6), TruncateBelow: 5, Sync: true})
		wantActions(t, st, 0, 10, 0, actionsAt(5, 6))
		// Truncating below a lower point again changes nothing.
		mustSave(t, st, replog.Batch{TruncateBelow: 2, Sync: true})
		wantActions(t, st, 0, 10, 0, actionsAt(5, 6))
		// Writing below the truncation point afterwards is a plain upsert.
		mustSave(t, st, replog.Batch{Actions: actionsAt(1), Sync: true})
		wantActions(t, st, 0, 10, 0, actionsAt(1, 5, 6))
		// Truncating everything leaves no last position.
		mustSave(t, st, replog.Batch{TruncateBelow: 100, Sync: true})
		wantLast(t, st, 0, false)
		wantActions(t, st, 0, math.MaxUint64, 0, nil)
	}},
	{"TruncateMany", func(t *testing.T, st replog.Storage) {
		const n = 5000
		for p := paxos.Position(0); p < n; p += 500 {
			var as []paxos.Action
			for q := p; q < p+500; q++ {
				as = append(as, appendAction(q, "x"))
			}
			mustSave(t, st, replog.Batch{Actions: as, Sync: true})
		}
		mustSave(t, st, replog.Batch{TruncateBelow: n - 1, Sync: true})
		wantActions(t, st, 0, math.MaxUint64, 0, []paxos.Action{appendAction(n-1, "x")})
		wantLast(t, st, n-1, true)
	}},
	{"LargePositions", func(t *testing.T, st replog.Storage) {
		ps := []paxos.Position{1<<32 - 1, 1 << 32, 1<<63 + 5, math.MaxUint64 - 1, math.MaxUint64}
		mustSave(t, st, replog.Batch{Actions: actionsAt(ps...), Sync: true})
		wantLast(t, st, math.MaxUint64, true)
		wantActions(t, st, 1<<32, math.MaxUint64, 0, actionsAt(ps[1:4]...))
		mustSave(t, st, replog.Batch{TruncateBelow: math.MaxUint64 - 1, Sync: true})
		wantActions(t, st, 0, math.MaxUint64, 0, actionsAt(math.MaxUint64-1))
	}},
	{"CallerOwnsSlices", func(t *testing.T, st replog.Storage) {
		hs := testHardState()
		b := replog.Batch{HardState: &hs, Actions: actionsAt(1, 2), Sync: true}
		mustSave(t, st, b)
		// Scribbling on what was saved must not change the store.
		b.Actions[0].Entry.Data[0] = 'X'
		b.Actions[1].Position = 40
		hs.Membership.Members[0].Addr = "scribbled"
		got, err := st.Actions(0, 10, 0)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(actionsAt(1, 2), got, cmpOpts...); diff != "" {
			t.Errorf("Actions after scribbling on the saved batch (-want +got):\n%s", diff)
		}
		// Scribbling on what was read must not change the store either.
		got[0].Entry.Data[0] = 'Y'
		a, _, err := st.Action(2)
		if err != nil {
			t.Fatal(err)
		}
		a.Entry.Data[0] = 'Z'
		wantActions(t, st, 0, 10, 0, actionsAt(1, 2))
		st2, err := st.InitialState()
		if err != nil {
			t.Fatal(err)
		}
		if got := st2.Membership.Members[0].Addr; got != "10.0.0.1:5051" {
			t.Errorf("stored member address = %q after scribbling", got)
		}
	}},
	{"UnsyncedVisible", func(t *testing.T, st replog.Storage) {
		// A Save without Sync is applied at once for reads.
		mustSave(t, st, replog.Batch{Actions: actionsAt(7)})
		wantActions(t, st, 0, 10, 0, actionsAt(7))
	}},
	{"ConcurrentReads", func(t *testing.T, st replog.Storage) {
		mustSave(t, st, replog.Batch{Actions: actionsAt(0), Sync: true})
		var wg sync.WaitGroup
		errc := make(chan error, 1)
		for range 2 {
			wg.Go(func() {
				for range 200 {
					as, err := st.Actions(0, math.MaxUint64, 4096)
					if err == nil && (len(as) == 0 || as[0].Position != 0) {
						err = fmt.Errorf("Actions = %d actions, want position 0 first", len(as))
					}
					if err == nil {
						_, _, err = st.LastPosition()
					}
					if err != nil {
						select {
						case errc <- err:
						default:
						}
						return
					}
				}
			})
		}
		for p := paxos.Position(1); p < 200; p++ {
			mustSave(t, st, replog.Batch{Actions: actionsAt(p), Sync: p%10 == 0})
		}
		wg.Wait()
		select {
		case err := <-errc:
			t.Errorf("concurrent read: %v", err)
		default:
		}
		wantLast(t, st, 199, true)
	}},
	{"CloseIdempotent", func(t *testing.T, st replog.Storage) {
		mustSave(t, st, replog.Batch{Actions: actionsAt(1), Sync: true})
		for i := range 2 {
			if err := st.Close(); err != nil {
				t.Fatalf("Close #%d: %v", i+1, err)
			}
		}
		if _, err := st.InitialState(); !errors.Is(err, replog.ErrClosed) {
			t.Errorf("InitialState after Close = %v, want ErrClosed", err)
		}
		if _, _, err := st.Action(1); !errors.Is(err, replog.ErrClosed) {
			t.Errorf("Action after Close = %v, want ErrClosed", err)
		}
		if _, err := st.Actions(0, 10, 0); !errors.Is(err, replog.ErrClosed) {
			t.Errorf("Actions after Close = %v, want ErrClosed", err)
		}
		if _, _, err := st.LastPosition(); !errors.Is(err, replog.ErrClosed) {
			t.Errorf("LastPosition after Close = %v, want ErrClosed", err)
		}
		if err := st.Save(replog.Batch{Actions: actionsAt(2), Sync: true}); !errors.Is(err, replog.ErrClosed) {
			t.Errorf("Save after Close = %v, want ErrClosed", err)
		}
	}},
}

type reopenTest struct {
	name string
	run  func(t *testing.T, open func() (replog.Storage, error))
}

func mustOpen(t *testing.T, open func() (replog.Storage, error)) replog.Storage {
	t.Helper()
	st, err := open()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return st
}

func mustClose(t *testing.T, st replog.Storage) {
	t.Helper()
	if err := st.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

var reopenTests = []reopenTest{
	{"SyncedStatePersists", func(t *testing.T, open func() (replog.Storage, error)) {
		st := mustOpen(t, open)
		hs := testHardState()
		mustSave(t, st, replog.Batch{HardState: &hs, Actions: actionsAt(1, 2, 3, 4), Sync: true})
		mustSave(t, st, replog.Batch{Actions: actionsAt(5), TruncateBelow: 3, Sync: true})
		mustClose(t, st)

		st = mustOpen(t, open)
		defer mustClose(t, st)
		got, err := st.InitialState()
		if err != nil {
			t.Fatalf("InitialState: %v", err)
		}
		if diff := cmp.Diff(hs, got, cmpOpts...); diff != "" {
			t.Errorf("InitialState after reopen (-want +got):\n%s", diff)
		}
		wantActions(t, st, 0, math.MaxUint64, 0, actionsAt(3, 4, 5))
		wantLast(t, st, 5, true)
	}},
	{"EmptyStaysEmpty", func(t *testing.T, open func() (replog.Storage, error)) {
		mustClose(t, mustOpen(t, open))
		st := mustOpen(t, open)
		defer mustClose(t, st)
		hs, err := st.InitialState()
		if err != nil {
			t.Fatalf("InitialState: %v", err)
		}
		if hs.Replica != 0 {
			t.Errorf("reopened empty store has replica %d, want 0", hs.Replica)
		}
		wantLast(t, st, 0, false)
	}},
	{"TruncateEverythingPersists", func(t *testing.T, open func() (replog.Storage, error)) {
		st := mustOpen(t, open)
		mustSave(t, st, replog.Batch{Actions: actionsAt(1, 2), Sync: true})
		mustSave(t, st, replog.Batch{TruncateBelow: 10, Sync: true})
		mustClose(t, st)
		st = mustOpen(t, open)
		defer mustClose(t, st)
		wantLast(t, st, 0, false)
		mustSave(t, st, replog.Batch{Actions: actionsAt(11), Sync: true})
		wantActions(t, st, 0, math.MaxUint64, 0, actionsAt(11))
	}},
}
