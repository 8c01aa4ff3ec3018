package badgerstore_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
)

// benchSave measures synced Saves of n positions of 256 bytes each.
func benchSave(b *testing.B, n int, opts badgerstore.Options) { benchSaveSync(b, n, true, opts) }

// benchSaveSync measures Saves of n positions of 256 bytes each, synced or
// not.
func benchSaveSync(b *testing.B, n int, sync bool, opts badgerstore.Options) {
	st, err := badgerstore.Open(filepath.Join(b.TempDir(), "replicated_log"), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	data := make([]byte, 256)
	prop := paxos.Proposal{Round: 1, Replica: 1}
	hs := paxos.HardState{Replica: 1, Status: paxos.StatusVoting, Promised: prop}
	batch := replog.Batch{HardState: &hs, Actions: make([]paxos.Action, n), Sync: sync}
	b.SetBytes(int64(n * len(data)))
	b.ReportAllocs()
	pos := paxos.Position(0)
	for b.Loop() {
		for i := range batch.Actions {
			batch.Actions[i] = paxos.Action{Position: pos, Promised: prop, Performed: prop,
				Entry: paxos.Entry{Type: paxos.EntryAppend, Data: data}}
			pos++
		}
		if err := st.Save(batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSave1(b *testing.B)  { benchSave(b, 1, badgerstore.Options{}) }
func BenchmarkSave64(b *testing.B) { benchSave(b, 64, badgerstore.Options{}) }

// Unsynced Saves (a batch of learned marks): no sync at all.
func BenchmarkSave1Unsynced(b *testing.B) { benchSaveSync(b, 1, false, badgerstore.Options{}) }

// The same with Badger's SyncWrites (two msyncs per commit, the store's mode
// before it synced its logs itself), for comparison.
func BenchmarkSave1BadgerSyncWrites(b *testing.B) {
	benchSave(b, 1, badgerstore.WithBadgerSyncWrites(badgerstore.Options{}))
}

func BenchmarkSave64BadgerSyncWrites(b *testing.B) {
	benchSave(b, 64, badgerstore.WithBadgerSyncWrites(badgerstore.Options{}))
}

// BenchmarkRawFdatasync is the floor: append 256*64 bytes to a file and
// fdatasync it, in the same file system.
func BenchmarkRawFdatasync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "raw"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 64*256)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
	}
}
