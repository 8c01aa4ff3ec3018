package badgerstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
)

// A power loss may keep a later write-ahead log's pages and lose an earlier
// one's, so between two syncs Badger may recover any subset of the commits
// that span a memtable rotation; that reordering cannot be produced in a
// test, so these tests check, from the store's trace of commits and syncs,
// that a commit which must never be durable without earlier ones is only
// made after a sync of them.

// trace records a store's commits and syncs.
type trace struct{ events []string }

func (tr *trace) record(ev string) { tr.events = append(tr.events, ev) }

// commits returns the indexes of the commits holding kind.
func (tr *trace) commits(kind string) []int {
	var out []int
	for i, ev := range tr.events {
		if what, ok := strings.CutPrefix(ev, "commit "); ok && slices.Contains(strings.Split(what, "+"), kind) {
			out = append(out, i)
		}
	}
	return out
}

// syncedBetween reports whether a sync comes after event i and before event j.
func (tr *trace) syncedBetween(i, j int) bool {
	return slices.Contains(tr.events[i+1:j], "sync")
}

func (tr *trace) String() string { return strings.Join(tr.events, "\n") }

// TestSaveOrdersItsTransactions checks the sync ordering of Saves that span
// transactions (R3 and R2).
func TestSaveOrdersItsTransactions(t *testing.T) {
	t.Parallel()
	hs := &paxos.HardState{Replica: 1, Status: paxos.StatusVoting, Begin: 4990}
	tests := []struct {
		name  string
		opts  func(badgerstore.Options) badgerstore.Options
		setup []replog.Batch
		batch replog.Batch
		check func(t *testing.T, tr *trace)
	}{{
		// R3: a truncation too large for one transaction records its marker
		// with the hard state; that transaction must be durable before any
		// later one deletes, and the deletes before the marker goes.
		name:  "large truncation",
		setup: batchesOf(0, 5000, 100, 16),
		batch: replog.Batch{HardState: hs, TruncateBelow: 4990, Sync: true},
		check: func(t *testing.T, tr *trace) {
			marks, deletes, unmarks := tr.commits("marker"), tr.commits("delete"), tr.commits("unmark")
			if len(marks) != 1 || len(unmarks) != 1 || len(deletes) < 2 {
				t.Fatalf("want one commit with the marker, one removing it and several deleting; trace:\n%s", tr)
			}
			if hsAt := tr.commits("hardstate"); len(hsAt) != 1 || hsAt[0] != marks[0] {
				t.Errorf("the hard state is not committed with the marker; trace:\n%s", tr)
			}
			for _, d := range deletes {
				if d > marks[0] && !tr.syncedBetween(marks[0], d) {
					t.Errorf("event %d deletes before the marker's commit (event %d) was synced; trace:\n%s", d, marks[0], tr)
				}
				if d < unmarks[0] && !tr.syncedBetween(d, unmarks[0]) {
					t.Errorf("the marker is removed (event %d) before the deletes of event %d were synced; trace:\n%s", unmarks[0], d, tr)
				}
			}
		},
	}, {
		// R2: the chunks of an action must be durable before the key
		// that names them is committed.
		name:  "chunked action",
		opts:  func(o badgerstore.Options) badgerstore.Options { return badgerstore.WithMaxValue(o, 16<<10) },
		batch: replog.Batch{Actions: []paxos.Action{bigAction(7, 1<<20, 9)}},
		check: func(t *testing.T, tr *trace) {
			chunks, heads := tr.commits("chunk"), tr.commits("action")
			if len(chunks) < 2 || len(heads) != 1 {
				t.Fatalf("want chunks in several commits, then the action's key; trace:\n%s", tr)
			}
			for _, c := range chunks {
				if c > heads[0] || !tr.syncedBetween(c, heads[0]) {
					t.Errorf("the action's key (event %d) is committed before the chunks of event %d were synced; trace:\n%s", heads[0], c, tr)
				}
			}
		},
	}, {
		// A batch split over transactions commits its hard state last,
		// after the actions before it are durable.
		name:  "split batch",
		batch: replog.Batch{HardState: hs, Actions: actionsOf(5000, 7000, 1000, 0)},
		check: func(t *testing.T, tr *trace) {
			acts, hsAt := tr.commits("action"), tr.commits("hardstate")
			if len(acts) < 2 || len(hsAt) != 1 {
				t.Fatalf("want the actions in several commits and one hard state; trace:\n%s", tr)
			}
			for _, a := range acts {
				if a < hsAt[0] && !tr.syncedBetween(a, hsAt[0]) {
					t.Errorf("the hard state (event %d) is committed before the actions of event %d were synced; trace:\n%s", hsAt[0], a, tr)
				}
			}
		},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := badgerstore.Options{MemTableSize: 1 << 20, GCInterval: -1}
			if tc.opts != nil {
				opts = tc.opts(opts)
			}
			st := openStore(t, filepath.Join(t.TempDir(), "replicated_log"), opts)
			defer st.Close()
			for _, b := range tc.setup {
				if err := st.Save(b); err != nil {
					t.Fatal(err)
				}
			}
			tr := &trace{}
			st.SetTrace(tr.record)
			if err := st.Save(tc.batch); err != nil {
				t.Fatal(err)
			}
			st.SetTrace(nil)
			tc.check(t, tr)
		})
	}
}

// actionsOf returns actions at [from, to) of size bytes each.
func actionsOf(from, to paxos.Position, size int, seed byte) []paxos.Action {
	var as []paxos.Action
	for p := from; p < to; p++ {
		as = append(as, paxos.Action{Position: p, Learned: true, Entry: paxos.Entry{Type: paxos.EntryAppend, Data: bytes.Repeat([]byte{seed}, size)}})
	}
	return as
}

// batchesOf returns unsynced batches of n actions covering [from, to).
func batchesOf(from, to paxos.Position, n int, size int) []replog.Batch {
	var bs []replog.Batch
	for p := from; p < to; p += paxos.Position(n) {
		bs = append(bs, replog.Batch{Actions: actionsOf(p, min(p+paxos.Position(n), to), size, byte(p))})
	}
	return bs
}

// crashImage copies the store's directory as a process killed now would
// leave it (what Badger wrote through its mappings is in the page cache),
// keeping sparse files sparse.
func crashImage(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	es, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	for _, e := range es {
		if !e.Type().IsRegular() {
			continue
		}
		err := func() error {
			src, err := os.Open(filepath.Join(from, e.Name()))
			if errors.Is(err, os.ErrNotExist) {
				return nil // deleted meanwhile
			}
			if err != nil {
				return err
			}
			defer src.Close()
			dst, err := os.Create(filepath.Join(to, e.Name()))
			if err != nil {
				return err
			}
			defer dst.Close()
			var off int64
			for {
				n, err := src.Read(buf)
				if n > 0 && slices.ContainsFunc(buf[:n], func(b byte) bool { return b != 0 }) {
					if _, err := dst.WriteAt(buf[:n], off); err != nil {
						return err
					}
				}
				off += int64(n)
				if err == io.EOF {
					return dst.Truncate(off)
				}
				if err != nil {
					return err
				}
			}
		}()
		if err != nil {
			t.Fatalf("crash image of %s: %v", e.Name(), err)
		}
	}
}

// TestCrashInChunkedSave (R2): a process killed at any commit of a Save that
// overwrites one chunked action and adds another leaves each position with
// its old value or its new one (the new one absent), never present but
// unreadable, and no chunk that no key names after the next Open.
func TestCrashInChunkedSave(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	live := filepath.Join(dir, "live")
	// A memtable large enough that nothing is flushed meanwhile: copying a
	// directory while Badger adds a table to it is not a crash image.
	opts := badgerstore.WithMaxValue(badgerstore.Options{MemTableSize: 4 << 20, GCInterval: -1}, 16<<10)
	st := openStore(t, live, opts)
	defer st.Close()
	oldA, newA, newB := bigAction(2, 400<<10, 1), bigAction(2, 300<<10, 2), bigAction(3, 500<<10, 3)
	if err := st.Save(replog.Batch{Actions: []paxos.Action{appendAt(1, "x"), oldA}, Sync: true}); err != nil {
		t.Fatal(err)
	}
	var images []string
	st.SetTrace(func(ev string) {
		if strings.HasPrefix(ev, "commit ") {
			img := filepath.Join(dir, fmt.Sprintf("crash%02d", len(images)))
			crashImage(t, live, img)
			images = append(images, img)
		}
	})
	if err := st.Save(replog.Batch{Actions: []paxos.Action{newA, newB}, Sync: true}); err != nil {
		t.Fatal(err)
	}
	st.SetTrace(nil)
	if len(images) < 4 {
		t.Fatalf("the Save made %d commits, want several (chunks, keys, old chunks' deletes)", len(images))
	}
	sawNew := false
	for i, img := range images {
		st := openStore(t, img, opts)
		a, ok, err := st.Action(2)
		if err != nil || !ok || !(bytes.Equal(a.Entry.Data, oldA.Entry.Data) || bytes.Equal(a.Entry.Data, newA.Entry.Data)) {
			t.Errorf("crash at commit %d: Action(2) = %t, %v; want the old or the new value", i, ok, err)
		}
		b, ok, err := st.Action(3)
		if err != nil || ok && !bytes.Equal(b.Entry.Data, newB.Entry.Data) {
			t.Errorf("crash at commit %d: Action(3) = %t, %v; want absent or the new value", i, ok, err)
		}
		sawNew = sawNew || ok
		if _, err := st.Actions(0, 10, 0); err != nil {
			t.Errorf("crash at commit %d: Actions: %v", i, err)
		}
		keys, err := st.ChunkKeys()
		if err != nil {
			t.Fatal(err)
		}
		// 16 KiB chunks: the keys left are those of the values read.
		want := chunksOf(a) + map[bool]int{true: chunksOf(b)}[ok]
		if len(keys) != want {
			t.Errorf("crash at commit %d: %d chunk keys after Open, want %d (those of the values stored)", i, len(keys), want)
		}
		st.Close()
	}
	if !sawNew {
		t.Errorf("no crash image holds the new action: the test saw no commit after it")
	}
}

// chunksOf is the number of 16 KiB chunks the store writes for a.
func chunksOf(a paxos.Action) int {
	n := replog.ActionSize(a) + 4 // CRC
	return (n + 16<<10 - 1) / (16 << 10)
}
