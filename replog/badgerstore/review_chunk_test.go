package badgerstore_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/replogtest"
)

// TestReviewBatchUpsertsInOrder: a batch's actions are upserts by position,
// applied in order, as the memory store applies them, also when one position
// comes twice and the first is chunked: the later value wins and reads back,
// before and after a reopen, and no chunk is left behind.
func TestReviewBatchUpsertsInOrder(t *testing.T) {
	t.Parallel()
	big := func(seed byte) paxos.Action { return bigAction(3, 5000, seed) }
	small := paxos.Action{Position: 3, Learned: true, Entry: paxos.Entry{Type: paxos.EntryAppend, Data: []byte("small")}}
	tests := []struct {
		name    string
		actions []paxos.Action
	}{
		{"chunked then small", []paxos.Action{big(1), small}},
		{"small then chunked", []paxos.Action{small, big(2)}},
		{"chunked then chunked", []paxos.Action{big(1), big(2)}},
		{"chunked, small, chunked", []paxos.Action{big(1), small, big(2)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := replogtest.NewStorage()
			b := replog.Batch{Actions: tc.actions, Sync: true}
			if err := want.Save(b); err != nil {
				t.Fatal(err)
			}
			wantAs, err := want.Actions(0, 10, 0)
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "replicated_log")
			opts := badgerstore.WithMaxValue(testOptions(t), 1024)
			st := openStore(t, dir, opts)
			if err := st.Save(b); err != nil {
				t.Fatal(err)
			}
			check := func(when string) {
				t.Helper()
				got, err := st.Actions(0, 10, 0)
				if err != nil {
					t.Fatalf("%s: Actions after a batch of %d actions at position 3: %v", when, len(tc.actions), err)
				}
				if diff := cmp.Diff(wantAs, got); diff != "" {
					t.Errorf("%s: Actions (-memory store +badger store):\n%s", when, diff)
				}
			}
			check("after Save")
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st = openStore(t, dir, opts)
			defer st.Close()
			check("after reopen")
			keys, err := st.ChunkKeys()
			if err != nil {
				t.Fatal(err)
			}
			chunks := 0
			if last := tc.actions[len(tc.actions)-1]; len(last.Entry.Data) > 1024 {
				chunks = (replog.ActionSize(last) + 4 + 1023) / 1024 // sealed, in chunks of 1 KiB
			}
			if len(keys) != chunks {
				t.Errorf("%d chunk keys after reopen, want %d", len(keys), chunks)
			}
		})
	}
}

// TestReviewMissingChunksAreCorrupt: a head whose chunks are all gone, or
// whose last chunk is gone, never reads as an empty or short value.
func TestReviewMissingChunksAreCorrupt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		drop func(n int) []int // indexes of chunk keys to delete
	}{
		{"all", func(n int) []int {
			var out []int
			for i := range n {
				out = append(out, i)
			}
			return out
		}},
		{"last", func(n int) []int { return []int{n - 1} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "replicated_log")
			opts := badgerstore.WithMaxValue(testOptions(t), 1024)
			st := openStore(t, dir, opts)
			if err := st.Save(replog.Batch{Actions: []paxos.Action{bigAction(2, 10000, 3)}, Sync: true}); err != nil {
				t.Fatal(err)
			}
			keys, err := st.ChunkKeys()
			if err != nil {
				t.Fatal(err)
			}
			for _, i := range tc.drop(len(keys)) {
				if err := st.RawDelete(keys[i]); err != nil {
					t.Fatal(err)
				}
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			// Open must neither fail nor clean the head up.
			st = openStore(t, dir, opts)
			defer st.Close()
			if _, _, err := st.Action(2); !errors.Is(err, replog.ErrCorrupt) {
				t.Errorf("Action(2) = %v, want ErrCorrupt", err)
			}
			if _, err := st.Actions(0, 10, 1); !errors.Is(err, replog.ErrCorrupt) {
				t.Errorf("Actions(0, 10, 1) = %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestReviewTruncationAcrossManyChunks: a truncation whose deletes span
// several transactions (more chunk keys than one takes) removes every chunk
// below it, keeps the chunked actions above it readable, also with maxBytes
// smaller than one of them, and leaves nothing for the next Open to clean.
func TestReviewTruncationAcrossManyChunks(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "replicated_log")
	opts := badgerstore.WithMaxValue(testOptions(t), 32)
	st := openStore(t, dir, opts)
	var as []paxos.Action
	for p := range paxos.Position(5) {
		as = append(as, bigAction(p, 64<<10, byte(p))) // 2049 chunks each
	}
	for _, a := range as {
		if err := st.Save(replog.Batch{Actions: []paxos.Action{a}, Sync: true}); err != nil {
			t.Fatal(err)
		}
	}
	hs := paxos.HardState{Replica: 1, Status: paxos.StatusVoting, Begin: 3}
	if err := st.Save(replog.Batch{HardState: &hs, TruncateBelow: 3, Sync: true}); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		got, err := st.Actions(0, 10, 1)
		if err != nil {
			t.Fatalf("%s: Actions(0, 10, 1): %v", when, err)
		}
		if diff := cmp.Diff(as[3:4], got); diff != "" {
			t.Errorf("%s: Actions(0, 10, 1) (-want +got):\n%s", when, diff)
		}
		got, err = st.Actions(0, 10, 0)
		if err != nil {
			t.Fatalf("%s: Actions(0, 10, 0): %v", when, err)
		}
		if diff := cmp.Diff(as[3:], got); diff != "" {
			t.Errorf("%s: Actions(0, 10, 0) (-want +got):\n%s", when, diff)
		}
		keys, err := st.ChunkKeys()
		if err != nil {
			t.Fatal(err)
		}
		want := 2 * ((replog.ActionSize(as[3]) + 4 + 31) / 32)
		if len(keys) != want {
			t.Errorf("%s: %d chunk keys, want %d (those of positions 3 and 4)", when, len(keys), want)
		}
	}
	check("after the truncation")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openStore(t, dir, opts)
	defer st.Close()
	check("after reopen")
}
