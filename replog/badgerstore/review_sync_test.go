package badgerstore_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
)

// TestReviewSyncedSaveSyncsActiveLogWithoutRotationMessage: the durability
// of a synced Save must not hang on Badger's debug message of a memtable
// rotation. Without it, long stretches of unsynced Saves rotate the memtable
// many times; Badger flushes and deletes the older logs meanwhile, so the
// write-ahead logs left are no longer numbered right after the newest one
// the store knows. A synced Save must still sync the log it wrote into, and
// find every new log to preallocate.
func TestReviewSyncedSaveSyncsActiveLogWithoutRotationMessage(t *testing.T) {
	t.Parallel()
	const mt = 1 << 20
	dir := filepath.Join(t.TempDir(), "replicated_log")
	st := openStore(t, dir, badgerstore.Options{MemTableSize: mt, GCInterval: -1})
	defer st.Close()
	st.MuteRotationMessage()
	data := bytes.Repeat([]byte("z"), 64<<10)
	pos := paxos.Position(1)
	for round := range 4 {
		// About six memtables' worth of unsynced Saves (learned marks).
		for range 6 * mt / len(data) {
			a := paxos.Action{Position: pos, Learned: true, Entry: paxos.Entry{Type: paxos.EntryAppend, Data: data}}
			pos++
			if err := st.Save(replog.Batch{Actions: []paxos.Action{a}}); err != nil {
				t.Fatal(err)
			}
		}
		a := paxos.Action{Position: pos, Promised: paxos.Proposal{Round: 1, Replica: 1}}
		pos++
		if err := st.Save(replog.Batch{Actions: []paxos.Action{a}, Sync: true}); err != nil {
			t.Fatal(err)
		}
		// Nothing writes after the Save: the newest log is the one it
		// wrote into.
		files := memFiles(t, dir)
		active := files[len(files)-1]
		if synced, gone := st.LastSync(); !slices.Contains(synced, active) {
			t.Fatalf("round %d: the synced Save synced %v (gone: %v), not the active write-ahead log %s (logs now: %v)",
				round, synced, gone, active, files)
		}
		// And it found the logs to preallocate as well.
		for _, name := range files {
			info, err := os.Stat(filepath.Join(dir, name))
			if errors.Is(err, os.ErrNotExist) {
				continue // flushed meanwhile
			}
			if err != nil {
				t.Fatal(err)
			}
			if info.Size() == 0 {
				continue // flushed: Badger truncates a log to 0 before removing it
			}
			if got, want := badgerstore.Allocated(info), badgerstore.WALExtent(mt)&^4095; got < want {
				t.Errorf("round %d: after a synced Save, %s has %d bytes allocated, want at least %d", round, name, got, want)
			}
		}
	}
}
