package badgerstore_test

import (
	"errors"
	"math"
	"path/filepath"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/replogtest"
)

func testOptions(t *testing.T) badgerstore.Options {
	return badgerstore.Options{Logger: hclog.New(&hclog.LoggerOptions{Output: hclog.DefaultOutput, Level: hclog.Warn, Name: t.Name()})}
}

func openStore(t *testing.T, dir string, opts badgerstore.Options) *badgerstore.Store {
	t.Helper()
	st, err := badgerstore.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return st
}

func TestConformance(t *testing.T) {
	t.Parallel()
	replogtest.RunStorageTests(t, func(t *testing.T) replog.Storage {
		return openStore(t, filepath.Join(t.TempDir(), "replicated_log"), testOptions(t))
	})
}

func TestReopen(t *testing.T) {
	t.Parallel()
	replogtest.RunReopenTests(t, func(t *testing.T) func() (replog.Storage, error) {
		dir := filepath.Join(t.TempDir(), "replicated_log")
		opts := testOptions(t)
		return func() (replog.Storage, error) { return badgerstore.Open(dir, opts) }
	})
}

func appendAt(p paxos.Position, data string) paxos.Action {
	return paxos.Action{Position: p, Learned: true, Entry: paxos.Entry{Type: paxos.EntryAppend, Data: []byte(data)}}
}

func TestSecondOpenIsInUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := openStore(t, dir, testOptions(t))
	defer st.Close()
	for _, ro := range []bool{false, true} {
		opts := testOptions(t)
		opts.ReadOnly = ro
		_, err := badgerstore.Open(dir, opts)
		var inUse *replog.InUseError
		if !errors.As(err, &inUse) || inUse.Dir != dir {
			t.Fatalf("second Open (read-only %t) = %v, want *replog.InUseError for %s", ro, err, dir)
		}
	}
}

func TestReadOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := openStore(t, dir, testOptions(t))
	if err := st.Save(replog.Batch{Actions: []paxos.Action{appendAt(1, "x")}, Sync: true}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	opts := testOptions(t)
	opts.ReadOnly = true
	ro := openStore(t, dir, opts)
	defer ro.Close()
	got, err := ro.Actions(0, math.MaxUint64, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]paxos.Action{appendAt(1, "x")}, got); diff != "" {
		t.Errorf("read-only Actions (-want +got):\n%s", diff)
	}
	if err := ro.Save(replog.Batch{Actions: []paxos.Action{appendAt(2, "y")}, Sync: true}); err == nil {
		t.Errorf("Save on a read-only store succeeded")
	}
	// Two inspectors may look at once.
	ro2 := openStore(t, dir, opts)
	ro2.Close()
}

func TestCorruptValueIsReported(t *testing.T) {
	t.Parallel()
	st := openStore(t, t.TempDir(), testOptions(t))
	defer st.Close()
	if err := st.Save(replog.Batch{Actions: []paxos.Action{appendAt(1, "x"), appendAt(2, "y")}, Sync: true}); err != nil {
		t.Fatal(err)
	}
	good := replog.EncodeAction(appendAt(2, "y"))
	tests := []struct {
		name  string
		value []byte
	}{
		{"flipped bit", append(good, 0, 0, 0, 0)}, // wrong checksum
		{"empty", nil},
	}
	for _, tt := range tests {
		if err := st.RawSet(badgerstore.ActionKey(2), tt.value); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.Action(2); !errors.Is(err, replog.ErrCorrupt) {
			t.Errorf("%s: Action(2) = %v, want ErrCorrupt", tt.name, err)
		}
		if _, err := st.Actions(0, 10, 0); !errors.Is(err, replog.ErrCorrupt) {
			t.Errorf("%s: Actions = %v, want ErrCorrupt", tt.name, err)
		}
	}
	if err := st.RawSet([]byte("m"), []byte{1, 2, 3, 4, 5, 6}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.InitialState(); !errors.Is(err, replog.ErrCorrupt) {
		t.Errorf("InitialState with a corrupt hard state = %v, want ErrCorrupt", err)
	}
}

func TestForeignDatabaseIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("hello"), []byte("world")) }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = badgerstore.Open(dir, testOptions(t))
	if !errors.Is(err, replog.ErrCorrupt) {
		t.Errorf("Open of a foreign Badger database = %v, want ErrCorrupt", err)
	}
}

func TestUnknownFormatIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := openStore(t, dir, testOptions(t))
	if err := st.RawSet([]byte("f"), []byte("regent-replog v99")); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if _, err := badgerstore.Open(dir, testOptions(t)); !errors.Is(err, replog.ErrCorrupt) {
		t.Errorf("Open of a store of an unknown format = %v, want ErrCorrupt", err)
	}
}

func TestGarbageFilesAreCorrupt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := openStore(t, dir, testOptions(t))
	st.Close()
	writeFile(t, filepath.Join(dir, "MANIFEST"), []byte("this is not a manifest at all"))
	_, err := badgerstore.Open(dir, testOptions(t))
	if !errors.Is(err, replog.ErrCorrupt) {
		t.Errorf("Open with a garbage MANIFEST = %v, want ErrCorrupt", err)
	}
}

func TestInterruptedTruncationIsFinished(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := openStore(t, dir, testOptions(t))
	var as []paxos.Action
	for p := range paxos.Position(10) {
		as = append(as, appendAt(p, "v"))
	}
	if err := st.Save(replog.Batch{Actions: as, Sync: true}); err != nil {
		t.Fatal(err)
	}
	// A crash after the batch recorded a truncation below 7 but before it
	// deleted anything.
	if err := st.RawSet([]byte("t"), []byte{0, 0, 0, 0, 0, 0, 0, 7}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	opts := testOptions(t)
	opts.ReadOnly = true
	ro := openStore(t, dir, opts)
	got, err := ro.Actions(0, math.MaxUint64, 0)
	ro.Close()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(as[7:], got); diff != "" {
		t.Errorf("read-only Actions hide the positions being truncated (-want +got):\n%s", diff)
	}

	st = openStore(t, dir, testOptions(t))
	defer st.Close()
	got, err = st.Actions(0, math.MaxUint64, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(as[7:], got); diff != "" {
		t.Errorf("Actions after the truncation was finished (-want +got):\n%s", diff)
	}
	// Positions below 7 are deleted, not merely hidden: writing one again
	// shows it alone.
	if err := st.Save(replog.Batch{Actions: []paxos.Action{appendAt(3, "w")}, Sync: true}); err != nil {
		t.Fatal(err)
	}
	got, err = st.Actions(0, 7, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]paxos.Action{appendAt(3, "w")}, got); diff != "" {
		t.Errorf("Actions below the old truncation (-want +got):\n%s", diff)
	}
}

func TestLargeBatchIsSplit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	opts := testOptions(t)
	opts.MemTableSize = 1 << 20 // 150 KiB per transaction
	st := openStore(t, dir, opts)
	data := string(make([]byte, 1000))
	var as []paxos.Action
	for p := range paxos.Position(2000) { // ~2 MB
		as = append(as, appendAt(p, data))
	}
	hs := paxos.HardState{Replica: 5, Status: paxos.StatusVoting, Begin: 100}
	if err := st.Save(replog.Batch{HardState: &hs, Actions: as, Sync: true}); err != nil {
		t.Fatal(err)
	}
	if err := st.Save(replog.Batch{TruncateBelow: 1990, Sync: true}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	st = openStore(t, dir, opts)
	defer st.Close()
	got, err := st.Actions(0, math.MaxUint64, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(as[1990:], got); diff != "" {
		t.Errorf("Actions (-want +got):\n%s", diff)
	}
	gotHS, err := st.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	if gotHS.Begin != 100 || gotHS.Replica != 5 {
		t.Errorf("hard state = %+v, want %+v", gotHS, hs)
	}
}

func TestGCAndDiskUsage(t *testing.T) {
	t.Parallel()
	// Large values to the value log, as format 1 wrote them.
	opts := badgerstore.WithLegacyValueThreshold(testOptions(t), 1024)
	st := openStore(t, t.TempDir(), opts)
	defer st.Close()
	big := string(make([]byte, 64<<10))
	for i := range paxos.Position(20) {
		if err := st.Save(replog.Batch{Actions: []paxos.Action{appendAt(i, big)}, Sync: true}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Save(replog.Batch{TruncateBelow: 19, Sync: true}); err != nil {
		t.Fatal(err)
	}
	st.RunGC() // must not fail or block; whether it rewrites depends on Badger's discard stats
	u, err := st.DiskUsage()
	if err != nil {
		t.Fatal(err)
	}
	if u.Apparent < 20*64<<10 || u.Allocated <= 0 {
		t.Errorf("DiskUsage = %+v, want at least the %d bytes written", u, 20*64<<10)
	}
}

func TestReadOnlyUncleanStore(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	live := filepath.Join(dir, "live")
	st := openStore(t, live, testOptions(t))
	if err := st.Save(replog.Batch{Actions: []paxos.Action{appendAt(1, "x")}, Sync: true}); err != nil {
		t.Fatal(err)
	}
	// A copy taken while the store is open looks like a killed master's.
	copyDir(t, live, filepath.Join(dir, "killed"))
	st.Close()

	opts := testOptions(t)
	opts.ReadOnly = true
	_, err := badgerstore.Open(filepath.Join(dir, "killed"), opts)
	if !errors.Is(err, badgerstore.ErrUnclean) || errors.Is(err, replog.ErrCorrupt) {
		t.Fatalf("read-only Open of an unclean store = %v, want ErrUnclean and not ErrCorrupt", err)
	}
	rw := openStore(t, filepath.Join(dir, "killed"), testOptions(t))
	defer rw.Close()
	got, err := rw.Actions(0, 10, 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]paxos.Action{appendAt(1, "x")}, got); diff != "" {
		t.Errorf("Actions after replay (-want +got):\n%s", diff)
	}
}
