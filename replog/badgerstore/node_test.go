package badgerstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/replogtest"
)

// runNode runs a single-master node on the Badger store in dir until the
// returned stop is called.
func runNode(t *testing.T, dir string) (*replog.Node, func()) {
	t.Helper()
	st := openStore(t, dir, testOptions(t))
	n, err := replog.New(replog.Config{Addr: "a:1", Masters: []string{"a:1"}, Quorum: 1, AutoInitialize: true, TickInterval: time.Millisecond}, st)
	if err != nil {
		t.Fatal(err)
	}
	tr := replogtest.NewNetwork(1).Join("a:1", n.ID, n.Step)
	errc := make(chan error, 1)
	go func() { errc <- n.Run(context.Background(), tr) }()
	return n, func() {
		n.Close()
		if err := <-errc; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := st.Close(); err != nil {
			t.Errorf("Close store: %v", err)
		}
	}
}

// TestNodeOnBadger drives one node on a real store: appends, a snapshot, a
// truncation, a restart, and reading everything back.
func TestNodeOnBadger(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "replicated_log")
	n, stop := runNode(t, dir)
	var err error
	for {
		if _, err = n.Elect(ctx); err == nil || !errors.Is(err, replog.ErrNotLeader) {
			break
		}
		time.Sleep(5 * time.Millisecond) // retry while the new log initialises
	}
	if err != nil {
		t.Fatalf("Elect: %v", err)
	}
	for i := range 50 {
		if _, err := n.Append(ctx, []byte(fmt.Sprintf("a%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := n.AppendSnapshot(ctx, []byte("snapshot"))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Truncate(ctx, snap); err != nil {
		t.Fatal(err)
	}
	last, err := n.Append(ctx, []byte("after"))
	if err != nil {
		t.Fatal(err)
	}
	stop()

	n, stop = runNode(t, dir)
	defer stop()
	var got []string
	for from := paxos.Position(0); from <= last; {
		es, err := n.Read(ctx, from)
		if err != nil {
			t.Fatalf("Read(%d) after restart: %v", from, err)
		}
		for _, e := range es {
			got = append(got, fmt.Sprintf("%d:%s", e.Position, e.Data))
		}
		from = es[len(es)-1].Position + 1
	}
	want := []string{fmt.Sprintf("%d:snapshot", snap), fmt.Sprintf("%d:after", last)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("read after restart %v, want %v", got, want)
	}
	if st := n.Status(); st.Begin != snap || st.ReplicaStatus != paxos.StatusVoting {
		t.Errorf("status after restart: begin %d, status %v; want begin %d, voting", st.Begin, st.ReplicaStatus, snap)
	}
}
