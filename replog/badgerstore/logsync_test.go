package badgerstore_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
)

// TestSaveSyncsWhatItMust: a synced Save syncs Badger's write-ahead log and
// leaves the value log alone; an unsynced Save syncs nothing, unless it wrote
// a chunked action, whose chunks are synced before its key. In the legacy
// mode (format 1) a value in the value log is synced at once, value log
// first.
func TestSaveSyncsWhatItMust(t *testing.T) {
	t.Parallel()
	type synced struct{ WAL, ValueLog bool }
	tests := []struct {
		name   string
		size   int
		sync   bool
		legacy bool
		want   synced
	}{
		{"synced small value", 256, true, false, synced{WAL: true}},
		{"unsynced small value", 256, false, false, synced{}},
		{"synced chunked value", 4096, true, false, synced{WAL: true}},
		{"unsynced chunked value", 4096, false, false, synced{WAL: true}},
		{"legacy synced value for the value log", 4096, true, true, synced{WAL: true, ValueLog: true}},
		{"legacy unsynced value for the value log", 4096, false, true, synced{WAL: true, ValueLog: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := badgerstore.WithMaxValue(badgerstore.Options{GCInterval: -1}, 1024)
			if tc.legacy {
				opts = badgerstore.WithLegacyValueThreshold(opts, 1024)
			}
			st, err := badgerstore.Open(filepath.Join(t.TempDir(), "replicated_log"), opts)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			wal0, vlog0, _ := st.LogSyncs()
			a := paxos.Action{Position: 1, Learned: true, Entry: paxos.Entry{Type: paxos.EntryAppend, Data: bytes.Repeat([]byte("x"), tc.size)}}
			if err := st.Save(replog.Batch{Actions: []paxos.Action{a}, Sync: tc.sync}); err != nil {
				t.Fatal(err)
			}
			wal, vlog, _ := st.LogSyncs()
			got := synced{WAL: wal > wal0, ValueLog: vlog > vlog0}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Save of %d bytes, Sync %v: log files synced (-want +got):\n%s", tc.size, tc.sync, diff)
			}
		})
	}
}

// memFiles lists Badger's write-ahead log files in dir, ascending.
func memFiles(t *testing.T, dir string) []string { return filesWithSuffix(t, dir, ".mem") }

// vlogFiles lists Badger's value-log files in dir, ascending.
func vlogFiles(t *testing.T, dir string) []string { return filesWithSuffix(t, dir, ".vlog") }

// filesWithSuffix lists the names in dir ending in suffix, ascending.
func filesWithSuffix(t *testing.T, dir, suffix string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if strings.HasSuffix(e.Name(), suffix) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out
}

// TestGCKeepsRewrittenFileUntilSynced: with SyncWrites off Badger's value-log
// GC moves live values into the current file without syncing and then
// deletes the old one; the store holds an iterator open across the pass so
// that the deletion waits until it has synced the moved values. This checks
// the Badger behaviour that relies on: after a pass that rewrote a file, the
// file still exists until the store lets go of it.
func TestGCKeepsRewrittenFileUntilSynced(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "replicated_log")
	// Values in the value log: a store written by format 1.
	opts := badgerstore.WithLegacyValueThreshold(badgerstore.Options{GCInterval: -1, MemTableSize: 1 << 20}, 1024)
	st, err := badgerstore.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("z"), 4096)
	const n = 5000 // 20 MiB of values: more than one 16 MiB value-log file
	for from := paxos.Position(0); from < n; from += 100 {
		var as []paxos.Action
		for p := from; p < from+100; p++ {
			as = append(as, paxos.Action{Position: p, Learned: true, Entry: paxos.Entry{Type: paxos.EntryAppend, Data: data}})
		}
		if err := st.Save(replog.Batch{Actions: as}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Save(replog.Batch{TruncateBelow: n - 1, Sync: true}); err != nil {
		t.Fatal(err)
	}
	// Close flushes the memtables; Flatten makes the deletions count.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = badgerstore.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Flatten(); err != nil {
		t.Fatal(err)
	}
	before := vlogFiles(t, dir)
	rewrote := false
	st.SetGCHook(func(err error) {
		if err != nil || rewrote {
			return
		}
		rewrote = true
		now := vlogFiles(t, dir)
		for _, f := range before {
			if !slices.Contains(now, f) {
				t.Errorf("value-log file %s deleted (files %v) before the store synced the values GC moved out of it", f, now)
			}
		}
	})
	st.RunGC()
	if !rewrote {
		t.Fatalf("value-log GC rewrote nothing (files %v): the test needs a rewrite", before)
	}
	after := vlogFiles(t, dir)
	if !slices.ContainsFunc(before, func(f string) bool { return !slices.Contains(after, f) }) {
		t.Errorf("value-log files %v after GC, want one of %v deleted", after, before)
	}
	a, ok, err := st.Action(n - 1)
	if err != nil || !ok || !bytes.Equal(a.Entry.Data, data) {
		t.Fatalf("Action(%d) after GC = %v, %v, %v", n-1, ok, err, len(a.Entry.Data))
	}
}
