package badgerstore_test

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
)

// TestKilledWriterLosesNothingAcknowledged runs a writer in a child process
// (this test binary, re-executed), kills it with SIGKILL while it writes, and
// reopens the store: every batch the child acknowledged (printed after Save
// returned) must be there, and the store must open cleanly, four times over.
func TestKilledWriterLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	// Not parallel: a child between fork and exec holds copies of every
	// descriptor, flock'ed ones included, which would make other tests'
	// stores look locked.
	dir := filepath.Join(t.TempDir(), "replicated_log")
	next := 0
	for round := range 4 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$")
		cmd.Env = append(os.Environ(), "BADGERSTORE_HELPER_DIR="+dir, fmt.Sprintf("BADGERSTORE_HELPER_FROM=%d", next))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		acked := -1
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			n, err := strconv.Atoi(sc.Text())
			if err != nil {
				continue
			}
			acked = n
			if acked >= next+200+round*37 {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatalf("round %d: kill the writer: %v", round, err)
				}
				break
			}
		}
		_ = cmd.Wait() // killed, or exited when done: both end the round
		if acked < 0 {
			t.Fatalf("round %d: the writer acknowledged nothing", round)
		}

		st, err := badgerstore.Open(dir, badgerstore.Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after SIGKILL: %v", round, err)
		}
		as, err := st.Actions(0, math.MaxUint64, 0)
		if err != nil {
			t.Fatalf("round %d: read after SIGKILL: %v", round, err)
		}
		last, _, err := st.LastPosition()
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		// Each acknowledged batch i holds positions 4i..4i+3.
		for i := 0; i <= acked; i++ {
			for q := 4 * i; q < 4*i+4; q++ {
				if q >= len(as) || as[q].Position != paxos.Position(q) || string(as[q].Entry.Data) != fmt.Sprintf("batch %d", i) {
					t.Fatalf("round %d: position %d of acknowledged batch %d is missing or wrong (have %d actions)", round, q, i, len(as))
				}
			}
		}
		t.Logf("round %d: %d batches acknowledged before SIGKILL, all present (last position %d)", round, acked+1, last)
		next = int(last/4) + 1
	}
}

// TestHelperWriter is the child of TestKilledWriterLosesNothingAcknowledged.
func TestHelperWriter(t *testing.T) {
	dir := os.Getenv("BADGERSTORE_HELPER_DIR")
	if dir == "" {
		t.Skip("helper process")
	}
	from, _ := strconv.Atoi(os.Getenv("BADGERSTORE_HELPER_FROM"))
	st, err := badgerstore.Open(dir, badgerstore.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper open:", err)
		os.Exit(2)
	}
	for i := from; ; i++ {
		var as []paxos.Action
		for q := 4 * i; q < 4*i+4; q++ {
			as = append(as, paxos.Action{Position: paxos.Position(q), Learned: true,
				Entry: paxos.Entry{Type: paxos.EntryAppend, Data: []byte(fmt.Sprintf("batch %d", i))}})
		}
		if err := st.Save(replog.Batch{Actions: as, Sync: true}); err != nil {
			fmt.Fprintln(os.Stderr, "helper save:", err)
			os.Exit(2)
		}
		fmt.Println(i)
	}
}
