package badgerstore_test

import (
	"context"
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/replogtest"
)

// TestReviewNodeStopsOnNoSpace: a Save refused for the free-space reserve is
// a storage error like any other to the node: Run returns it at once (no
// retry), matching *NoSpaceError and ENOSPC and never ErrCorrupt, which
// would make the master exit as a corrupt replica (78) instead of being
// restarted.
func TestReviewNodeStopsOnNoSpace(t *testing.T) {
	t.Parallel()
	opts := testOptions(t)
	opts.FreeSpaceReserve = 1 << 62
	st := openStore(t, filepath.Join(t.TempDir(), "replicated_log"), opts)
	defer func() {
		// Close would leave Badger open below the reserve (by design);
		// this test wants it closed.
		st.SetFreeSpaceReserve(-1)
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	n, err := replog.New(replog.Config{Addr: "a:1", Masters: []string{"a:1"}, Quorum: 1, AutoInitialize: true, TickInterval: time.Millisecond}, st)
	if err != nil {
		t.Fatal(err)
	}
	tr := replogtest.NewNetwork(1).Join("a:1", n.ID, n.Step)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = n.Run(ctx, tr)
	if ctx.Err() != nil {
		t.Fatalf("Run went on until the deadline below the free-space reserve (returned %v)", err)
	}
	var ns *badgerstore.NoSpaceError
	if !errors.As(err, &ns) || !errors.Is(err, syscall.ENOSPC) || errors.Is(err, replog.ErrCorrupt) {
		t.Fatalf("Run below the free-space reserve = %v; want a *NoSpaceError matching ENOSPC and not ErrCorrupt", err)
	}
	if got := n.Err(); !errors.Is(got, syscall.ENOSPC) {
		t.Errorf("Err() = %v, want the NoSpaceError", got)
	}
}

// TestReviewReopenAfterCloseLeftEngineOpen: a Close below the free-space
// reserve leaves Badger open, holding its directory lock, and releases the
// store's own. An Open of the same directory in the same process must then
// say the store is in use (transient: the supervisor restarts the master),
// never that it is corrupt (which stops the master for good) nor hang; and
// once Badger is closed, the store opens with everything saved.
func TestReviewReopenAfterCloseLeftEngineOpen(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "replicated_log")
	st := openStore(t, dir, testOptions(t))
	if err := st.Save(replog.Batch{Actions: []paxos.Action{appendAt(1, "kept")}, Sync: true}); err != nil {
		t.Fatal(err)
	}
	st.SetFreeSpaceReserve(1 << 62)
	var ns *badgerstore.NoSpaceError
	if err := st.Close(); !errors.As(err, &ns) {
		t.Fatalf("Close below the reserve = %v, want a *NoSpaceError", err)
	}
	_, err := badgerstore.Open(dir, testOptions(t))
	var inUse *replog.InUseError
	if !errors.As(err, &inUse) || errors.Is(err, replog.ErrCorrupt) {
		t.Errorf("Open while the engine is left open = %v, want a *replog.InUseError, not ErrCorrupt", err)
	}
	if err := st.CloseEngine(); err != nil {
		t.Fatal(err)
	}
	st = openStore(t, dir, testOptions(t))
	defer st.Close()
	if a, ok, err := st.Action(1); err != nil || !ok || string(a.Entry.Data) != "kept" {
		t.Errorf("Action(1) after reopen = %v, %t, %v; want the saved action", a, ok, err)
	}
}
