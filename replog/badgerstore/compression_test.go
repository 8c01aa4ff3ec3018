package badgerstore_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
)

// TestSnappyTablesStayReadable: a store whose tables were written with
// Snappy (as stores were before compression was turned off) opens without
// it, reads every action back, and compacts its old tables with new ones
// into a store that still reads back the same.
func TestSnappyTablesStayReadable(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "replicated_log")
	small := testOptions(t)
	small.MemTableSize = 1 << 20 // many tables from a few MiB
	const n = 3000
	value := func(p paxos.Position) []byte {
		return bytes.Repeat([]byte(fmt.Sprintf("position %d ", p)), 64) // compressible, ~1 KiB
	}
	write := func(st *badgerstore.Store, from, to paxos.Position) {
		t.Helper()
		for p := from; p < to; p += 50 {
			var as []paxos.Action
			for q := p; q < min(p+50, to); q++ {
				as = append(as, paxos.Action{Position: q, Learned: true, Entry: paxos.Entry{Type: paxos.EntryAppend, Data: value(q)}})
			}
			if err := st.Save(replog.Batch{Actions: as, Sync: true}); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(st *badgerstore.Store, to paxos.Position) {
		t.Helper()
		as, err := st.Actions(0, to, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(as) != int(to) {
			t.Fatalf("read %d actions, want %d", len(as), to)
		}
		for i, a := range as {
			if want := value(paxos.Position(i)); a.Position != paxos.Position(i) || !a.Learned || !bytes.Equal(a.Entry.Data, want) {
				t.Fatalf("action %d: %s", i, cmp.Diff(paxos.Action{Position: paxos.Position(i), Learned: true, Entry: paxos.Entry{Type: paxos.EntryAppend, Data: want}}, a))
			}
		}
	}

	st := openStore(t, dir, badgerstore.WithSnappy(small))
	write(st, 0, n)
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if ssts, _ := filepath.Glob(filepath.Join(dir, "*.sst")); len(ssts) == 0 {
		t.Fatal("no table written with Snappy")
	}
	st = openStore(t, dir, small)
	check(st, n)
	write(st, n, 2*n) // new tables without compression, compacted with the old
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openStore(t, dir, small)
	defer st.Close()
	check(st, 2*n)
}
