package badgerstore_test

import (
	"bytes"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
)

// vlogAllocated returns the sum and the largest of the disk blocks allocated
// to each of Badger's value-log files.
func vlogAllocated(t *testing.T, dir string) (sum, largest int64) {
	t.Helper()
	for _, name := range vlogFiles(t, dir) {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		sum += badgerstore.Allocated(info)
		largest = max(largest, badgerstore.Allocated(info))
	}
	return sum, largest
}

// vlogHeaderBlock is what Badger allocates to a value-log file that holds no
// value: one block for its header.
const vlogHeaderBlock = 4096

// bigAction is an action at p whose data is n bytes derived from seed.
func bigAction(p paxos.Position, n int, seed byte) paxos.Action {
	data := make([]byte, n)
	for i := range data {
		data[i] = byte(i*7) ^ seed
	}
	return paxos.Action{Position: p, Learned: true, Entry: paxos.Entry{Type: paxos.EntryAppend, Data: data}}
}

// readAll returns every stored action and the highest position.
func readAll(t *testing.T, st *badgerstore.Store) ([]paxos.Action, paxos.Position, bool) {
	t.Helper()
	as, err := st.Actions(0, math.MaxUint64, 0)
	if err != nil {
		t.Fatalf("Actions: %v", err)
	}
	last, ok, err := st.LastPosition()
	if err != nil {
		t.Fatalf("LastPosition: %v", err)
	}
	return as, last, ok
}

// TestLargeActionRoundTrips (R2): a 5 MiB action, larger than anything Badger
// keeps out of its value log, is stored as chunks: it reads back through
// Action and Actions (also with maxBytes), survives a reopen, an overwrite
// and a truncation removes its chunks, and Badger's value log never grows.
func TestLargeActionRoundTrips(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "replicated_log")
	opts := testOptions(t)
	opts.GCInterval = -1
	st := openStore(t, dir, opts)
	defer func() { st.Close() }()

	big := bigAction(3, 5<<20, 1)
	want := []paxos.Action{appendAt(1, "a"), appendAt(2, "b"), big, appendAt(4, "d"), appendAt(5, "e")}
	hs := paxos.HardState{Replica: 1, Status: paxos.StatusVoting}
	if err := st.Save(replog.Batch{HardState: &hs, Actions: want, Sync: true}); err != nil {
		t.Fatal(err)
	}
	check := func(when string, want []paxos.Action) {
		t.Helper()
		got, last, ok := readAll(t, st)
		if diff := cmp.Diff(want, got, fastBytes); diff != "" {
			t.Fatalf("%s: Actions (-want +got):\n%s", when, diff)
		}
		if !ok || last != want[len(want)-1].Position {
			t.Errorf("%s: LastPosition = %d, %t, want %d", when, last, ok, want[len(want)-1].Position)
		}
		for _, w := range want {
			a, ok, err := st.Action(w.Position)
			if err != nil || !ok || !cmp.Equal(w, a, fastBytes) {
				t.Fatalf("%s: Action(%d) = %t, %v, want the action saved", when, w.Position, ok, err)
			}
		}
	}
	check("after Save", want)
	if _, v := vlogAllocated(t, dir); v > vlogHeaderBlock {
		t.Errorf("after Save: a value-log file has %d bytes allocated, more than its header", v)
	}
	// maxBytes counts the whole action: it ends a read before the big one.
	got, err := st.Actions(1, math.MaxUint64, replog.ActionSize(want[0])+replog.ActionSize(want[1])+1)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[:2], got, fastBytes); diff != "" {
		t.Errorf("Actions with maxBytes below the big action (-want +got):\n%s", diff)
	}
	if got, err = st.Actions(3, math.MaxUint64, 1); err != nil || len(got) != 1 || !cmp.Equal(big, got[0], fastBytes) {
		t.Errorf("Actions from the big action with maxBytes 1 = %d actions, %v; want the big one alone", len(got), err)
	}
	keys, err := st.ChunkKeys()
	if err != nil || len(keys) < 5 {
		t.Fatalf("chunk keys after saving a 5 MiB action: %d, %v; want at least 5", len(keys), err)
	}

	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openStore(t, dir, opts)
	check("after reopen", want)

	// Overwrite with another big action, then with a small one: the
	// chunks of the old values go.
	big2 := bigAction(3, 3<<20, 2)
	want[2] = big2
	if err := st.Save(replog.Batch{Actions: []paxos.Action{big2}, Sync: true}); err != nil {
		t.Fatal(err)
	}
	check("after overwriting with a 3 MiB action", want)
	keys2, err := st.ChunkKeys()
	if err != nil || len(keys2) >= len(keys) {
		t.Errorf("chunk keys after overwriting 5 MiB with 3 MiB: %d (was %d), %v; want fewer", len(keys2), len(keys), err)
	}
	want[2] = appendAt(3, "c")
	if err := st.Save(replog.Batch{Actions: want[2:3]}); err != nil {
		t.Fatal(err)
	}
	check("after overwriting with a small action", want)
	if keys, err := st.ChunkKeys(); err != nil || len(keys) != 0 {
		t.Errorf("chunk keys after overwriting with a small action: %d, %v; want none", len(keys), err)
	}

	// Truncation deletes chunks with their actions.
	for _, p := range []paxos.Position{6, 7} {
		want = append(want, bigAction(p, 2<<20, byte(p)))
	}
	if err := st.Save(replog.Batch{Actions: want[5:], Sync: true}); err != nil {
		t.Fatal(err)
	}
	check("after saving two more", want)
	if err := st.Save(replog.Batch{TruncateBelow: 7, Sync: true}); err != nil {
		t.Fatal(err)
	}
	check("after truncation", want[6:])
	keys, err = st.ChunkKeys()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k[8] != 7 { // the low byte of the big-endian position
			t.Errorf("chunk key %x survived the truncation below 7", k)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st = openStore(t, dir, opts)
	check("after truncation and reopen", want[6:])
	if _, v := vlogAllocated(t, dir); v > vlogHeaderBlock {
		t.Errorf("a value-log file has %d bytes allocated, more than its header: a value went there", v)
	}
}

// TestChunkedActionCorruption: a chunk changed or missing is reported as
// corruption, never decoded.
func TestChunkedActionCorruption(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		value []byte // nil: delete the chunk
	}{
		{"flipped bit", []byte("not the chunk")},
		{"missing", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := openStore(t, t.TempDir(), badgerstore.WithMaxValue(testOptions(t), 1024))
			defer st.Close()
			if err := st.Save(replog.Batch{Actions: []paxos.Action{bigAction(2, 10000, 3)}, Sync: true}); err != nil {
				t.Fatal(err)
			}
			keys, err := st.ChunkKeys()
			if err != nil || len(keys) < 2 {
				t.Fatalf("chunk keys: %d, %v", len(keys), err)
			}
			if tc.value == nil {
				err = st.RawDelete(keys[1])
			} else {
				err = st.RawSet(keys[1], tc.value)
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := st.Action(2); !errors.Is(err, replog.ErrCorrupt) {
				t.Errorf("Action(2) = %v, want ErrCorrupt", err)
			}
			if _, err := st.Actions(0, 10, 0); !errors.Is(err, replog.ErrCorrupt) {
				t.Errorf("Actions = %v, want ErrCorrupt", err)
			}
		})
	}
}

// TestFormat1StoreOpens: a store written by the previous format (marker v1,
// values of 64 KiB or more in Badger's value log) opens and reads back, its
// marker becomes v2 on a read-write Open, and it then takes chunked actions.
func TestFormat1StoreOpens(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "replicated_log")
	legacy := badgerstore.WithLegacyValueThreshold(testOptions(t), 64<<10)
	st := openStore(t, dir, legacy)
	want := []paxos.Action{appendAt(1, "small"), bigAction(2, 200<<10, 4), bigAction(3, 100<<10, 5)}
	if err := st.Save(replog.Batch{Actions: want, Sync: true}); err != nil {
		t.Fatal(err)
	}
	if err := st.RawSet([]byte("f"), []byte("regent-replog v1")); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if v, _ := vlogAllocated(t, dir); v < 300<<10 {
		t.Fatalf("the legacy store put %d bytes in the value log, want its big values there", v)
	}

	ro := testOptions(t)
	ro.ReadOnly = true
	for _, opts := range []badgerstore.Options{ro, testOptions(t)} {
		st = openStore(t, dir, opts)
		got, _, _ := readAll(t, st)
		if diff := cmp.Diff(want, got, fastBytes); diff != "" {
			t.Errorf("read-only %t: Actions of a format-1 store (-want +got):\n%s", opts.ReadOnly, diff)
		}
		marker, err := st.FormatMarker()
		wantMarker := "regent-replog v2"
		if opts.ReadOnly {
			wantMarker = "regent-replog v1"
		}
		if err != nil || marker != wantMarker {
			t.Errorf("read-only %t: format marker %q, %v; want %q", opts.ReadOnly, marker, err, wantMarker)
		}
		if opts.ReadOnly {
			st.Close()
		}
	}
	defer st.Close()
	want = append(want, bigAction(4, 3<<20, 6))
	if err := st.Save(replog.Batch{Actions: want[3:], Sync: true}); err != nil {
		t.Fatal(err)
	}
	got, _, _ := readAll(t, st)
	if diff := cmp.Diff(want, got, fastBytes); diff != "" {
		t.Errorf("Actions after a chunked save (-want +got):\n%s", diff)
	}
}

// TestUnknownFormatNamesBoth: the error for an unknown marker names the
// formats this binary reads.
func TestUnknownFormatNamesBoth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := openStore(t, dir, testOptions(t))
	if err := st.RawSet([]byte("f"), []byte("regent-replog v3")); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, err := badgerstore.Open(dir, testOptions(t))
	if !errors.Is(err, replog.ErrCorrupt) || !strings.Contains(fmtErr(err), "v1") || !strings.Contains(fmtErr(err), "v2") {
		t.Errorf("Open of a v3 store = %v, want ErrCorrupt naming v1 and v2", err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// fastBytes compares byte slices at once: go-cmp would walk megabytes
// element by element.
var fastBytes = cmp.Comparer(bytes.Equal)
