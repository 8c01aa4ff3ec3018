package appliance

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/master"
)

// The stale-read check. Every leader-only answer names the leadership that
// served it (master.LeaderEpochHeader: the log position of that leadership's
// leader record), and the clients record it with the master that answered.
// A master elected later holds a greater epoch without any clock: its
// election round reached a quorum, so it saw the previous leader's record,
// learned before that leader served. So once a write was
// acknowledged under epoch e', a master answering under an older epoch e < e'
// has been deposed, and must not answer at all: a read it serves may miss
// that write (a stale read, the lease's promise broken), and a write it
// acknowledges was accepted by no quorum that saw the newer leader.
//
// Porcupine finds a stale read only if the value read is wrong; this check
// finds the deposed leader answering even when the value happens to be right.

// staleCheck is the outcome of checkStaleReads.
type staleCheck struct {
	// Skipped is set when no acknowledged operation names an epoch: the
	// masters' binary predates master.LeaderEpochHeader.
	Skipped  bool
	Checked  int      // acknowledged operations with an epoch
	Epochs   int      // distinct leaderships seen
	Stale    int      // operations answered under a deposed leadership
	Problems []string // one line per violation, at most the limit, then a count
}

// checkStaleReads checks the acknowledged operations of a history: each
// carries an epoch, each epoch was served by one master, and no operation
// invoked after a write was acknowledged under a newer epoch was answered
// under an older one. Problems lists at most limit violations. A history in
// which no acknowledged operation carries an epoch is skipped.
func checkStaleReads(ops []chaosOp, limit int) staleCheck {
	var sc staleCheck
	report := func(format string, args ...any) {
		if len(sc.Problems) < limit {
			sc.Problems = append(sc.Problems, fmt.Sprintf(format, args...))
		}
	}
	var acked, writes []chaosOp
	unnamed := 0
	for _, op := range ops {
		if op.Outcome != chaosOK {
			continue
		}
		if op.Epoch == 0 {
			unnamed++
			continue
		}
		acked = append(acked, op)
		if op.Kind == chaosWrite {
			writes = append(writes, op)
		}
	}
	sc.Checked = len(acked)
	if sc.Checked == 0 && unnamed > 0 {
		sc.Skipped = true
		return sc
	}
	if unnamed > 0 {
		report("%d acknowledged operations name no leadership epoch (no %s header)", unnamed, master.LeaderEpochHeader)
	}

	// One master per epoch.
	servers := map[int64]string{}
	conflicts := map[int64]bool{}
	for _, op := range acked {
		s, ok := servers[op.Epoch]
		switch {
		case !ok:
			servers[op.Epoch] = op.Server
		case s != op.Server && !conflicts[op.Epoch]:
			conflicts[op.Epoch] = true
			report("epoch %s answered by two masters, %s and %s", fmtEpoch(op.Epoch), s, op.Server)
		}
	}
	sc.Epochs = len(servers)

	// newest[i] is the write with the newest epoch among writes[:i+1], in
	// order of completion.
	slices.SortStableFunc(writes, func(a, b chaosOp) int { return cmpInt64(a.Return, b.Return) })
	newest := make([]int, len(writes))
	for i := range writes {
		newest[i] = i
		if i > 0 && writes[newest[i-1]].Epoch >= writes[i].Epoch {
			newest[i] = newest[i-1]
		}
	}
	for _, op := range acked {
		// Writes acknowledged before op was invoked.
		k := sort.Search(len(writes), func(i int) bool { return writes[i].Return >= op.Call })
		if k == 0 {
			continue
		}
		w := writes[newest[k-1]]
		if w.Epoch <= op.Epoch {
			continue
		}
		sc.Stale++
		what := "stale read"
		if op.Kind == chaosWrite {
			what = "write acknowledged by a deposed leader"
		}
		report("%s: client %d's %s %s–%s answered by %s under epoch %s, after client %d's write of %s=%v was acknowledged at %s by %s under the newer epoch %s",
			what, op.Client, op.Kind, fmtNanos(op.Call), fmtNanos(op.Return), op.Server, fmtEpoch(op.Epoch),
			w.Client, w.Role, w.Weight, fmtNanos(w.Return), w.Server, fmtEpoch(w.Epoch))
	}
	if n := sc.Stale + len(conflicts) + min(unnamed, 1); n > len(sc.Problems) && len(sc.Problems) == limit {
		sc.Problems = append(sc.Problems, fmt.Sprintf("… %d more", n-limit))
	}
	return sc
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// fmtEpoch renders an epoch (an election time in Unix nanoseconds) as a
// time of day.
func fmtEpoch(e int64) string {
	return time.Unix(0, e).UTC().Format("15:04:05.000000") + " (" + strconv.FormatInt(e, 10) + ")"
}

func TestChaosStaleReadCheck(t *testing.T) {
	t.Parallel()
	const a, b = "10.0.0.1:5050", "10.0.0.2:5050"
	w := func(client int, call, ret int64, server string, epoch int64) chaosOp {
		return chaosOp{Client: client, Kind: chaosWrite, Role: "r0", Weight: float64(call), Call: call, Return: ret, Outcome: chaosOK, Server: server, Epoch: epoch}
	}
	r := func(client int, call, ret int64, server string, epoch int64) chaosOp {
		return chaosOp{Client: client, Kind: chaosRead, Call: call, Return: ret, Outcome: chaosOK, Server: server, Epoch: epoch, Weights: map[string]float64{}}
	}
	tests := []struct {
		name        string
		ops         []chaosOp
		limit       int
		wantStale   int
		wantEpochs  int
		wantN       int // problem lines
		wantSkipped bool
	}{
		{
			name:       "one leader",
			ops:        []chaosOp{w(0, 0, 10, a, 1), r(1, 5, 15, a, 1), r(1, 20, 30, a, 1)},
			wantEpochs: 1,
		},
		{
			name:       "leadership moves, old leader stops answering",
			ops:        []chaosOp{w(0, 0, 10, a, 1), r(1, 20, 30, a, 1), w(0, 40, 50, b, 2), r(1, 60, 70, b, 2)},
			wantEpochs: 2,
		},
		{
			name:       "old leader's read overlaps the new leader's first write",
			ops:        []chaosOp{w(0, 0, 10, a, 1), w(0, 40, 50, b, 2), r(1, 45, 70, a, 1)},
			wantEpochs: 2,
		},
		{
			name:       "stale read: old leader answers after the new leader acknowledged a write",
			ops:        []chaosOp{w(0, 0, 10, a, 1), w(0, 40, 50, b, 2), r(1, 51, 70, a, 1)},
			wantStale:  1,
			wantEpochs: 2,
			wantN:      1,
		},
		{
			name:       "write acknowledged by a deposed leader",
			ops:        []chaosOp{w(0, 40, 50, b, 2), w(1, 60, 70, a, 1)},
			wantStale:  1,
			wantEpochs: 2,
			wantN:      1,
		},
		{
			name:       "a newer write further back still counts",
			ops:        []chaosOp{w(0, 0, 10, b, 2), w(1, 12, 20, b, 2), r(2, 30, 40, a, 1), r(2, 41, 42, b, 2)},
			wantStale:  1,
			wantEpochs: 2,
			wantN:      1,
		},
		{
			name:       "a master re-elected under a newer epoch may answer",
			ops:        []chaosOp{w(0, 0, 10, a, 1), w(0, 20, 30, b, 2), r(1, 40, 50, a, 3), w(0, 60, 70, a, 3)},
			wantEpochs: 3,
		},
		{
			name:       "one epoch, two masters",
			ops:        []chaosOp{w(0, 0, 10, a, 1), r(1, 20, 30, b, 1), r(1, 40, 50, b, 1)},
			wantEpochs: 1,
			wantN:      1,
		},
		{
			name: "unacknowledged operations are not checked",
			ops: []chaosOp{
				w(0, 0, 10, b, 2),
				{Client: 1, Kind: chaosWrite, Role: "r1", Weight: 9, Call: 20, Return: 30, Outcome: chaosUnknown},
				{Client: 1, Kind: chaosRead, Call: 40, Return: 50, Outcome: chaosFailed},
			},
			wantEpochs: 1,
		},
		{
			name:       "acknowledged without an epoch",
			ops:        []chaosOp{w(0, 0, 10, a, 1), r(1, 20, 30, a, 0)},
			wantEpochs: 1,
			wantN:      1,
		},
		{
			name:        "a binary without epochs is not checked",
			ops:         []chaosOp{w(0, 0, 10, b, 0), r(1, 20, 30, a, 0)},
			wantSkipped: true,
		},
		{
			name:       "many stale reads, listed up to the limit",
			ops:        []chaosOp{w(0, 0, 10, b, 2), r(1, 20, 21, a, 1), r(1, 22, 23, a, 1), r(1, 24, 25, a, 1), r(1, 26, 27, a, 1)},
			limit:      2,
			wantStale:  4,
			wantEpochs: 2,
			wantN:      3, // two, then "… 2 more"
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			limit := tc.limit
			if limit == 0 {
				limit = 20
			}
			// Order of the history must not matter.
			for _, ops := range [][]chaosOp{tc.ops, reversed(tc.ops)} {
				got := checkStaleReads(ops, limit)
				if got.Stale != tc.wantStale || got.Epochs != tc.wantEpochs || len(got.Problems) != tc.wantN || got.Skipped != tc.wantSkipped {
					t.Errorf("history %+v:\ngot %d stale, %d epochs, skipped %v, problems %q\nwant %d stale, %d epochs, skipped %v, %d problems",
						ops, got.Stale, got.Epochs, got.Skipped, got.Problems, tc.wantStale, tc.wantEpochs, tc.wantSkipped, tc.wantN)
				}
			}
		})
	}
}

func reversed(ops []chaosOp) []chaosOp {
	out := slices.Clone(ops)
	slices.Reverse(out)
	return out
}

func TestChaosStaleReadMessage(t *testing.T) {
	t.Parallel()
	ops := []chaosOp{
		{Client: 3, Kind: chaosWrite, Role: "r2", Weight: 17, Call: 0, Return: int64(time.Second), Outcome: chaosOK, Server: "b:1", Epoch: 2e9},
		{Client: 4, Kind: chaosRead, Call: int64(2 * time.Second), Return: int64(3 * time.Second), Outcome: chaosOK, Server: "a:1", Epoch: 1e9},
	}
	got := checkStaleReads(ops, 20).Problems
	want := []string{"stale read: client 4's read 2.000s–3.000s answered by a:1 under epoch 00:00:01.000000 (1000000000), " +
		"after client 3's write of r2=17 was acknowledged at 1.000s by b:1 under the newer epoch 00:00:02.000000 (2000000000)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}
