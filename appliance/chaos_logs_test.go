package appliance

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
)

// chaosReplicaLog is one master's replica as the end-of-run log check reads
// it, offline, once every appliance has stopped.
type chaosReplicaLog struct {
	Name    string // m1, m2, …
	Status  string // VOTING, RECOVERING, …
	Begin   uint64
	Entries []learnedEntry // ascending positions
}

// chaosLogPair is the comparison of two VOTING replicas' learned entries.
type chaosLogPair struct {
	A, B string
	// Compared counts the positions both hold as learned (tombstones
	// aside); Tombstones those skipped because either side holds a
	// tombstone NOP there, which may stand for any truncated value.
	Compared, Tombstones int
	// Differ counts the compared positions whose values differ; First is
	// the lowest of them, with both sides' entries.
	Differ         int
	First          uint64
	FirstA, FirstB learnedEntry
}

// String describes p in one line.
func (p chaosLogPair) String() string {
	s := fmt.Sprintf("%s–%s: %d positions compared, %d tombstones skipped", p.A, p.B, p.Compared, p.Tombstones)
	if p.Differ > 0 {
		s += fmt.Sprintf(", %d differ, first at position %d (%s %s %s, %s %s %s)", p.Differ, p.First,
			p.A, p.FirstA.Type, p.FirstA.SHA256, p.B, p.FirstB.Type, p.FirstB.SHA256)
	}
	return s
}

// compareChaosLogs compares every pair of VOTING replicas on the positions
// both hold as learned: each replica's Begin may differ (truncation), and a
// position one of them has not learned is not compared. It returns one
// result per pair, in the order of logs, and a problem for each pair whose
// values differ at any compared position.
func compareChaosLogs(logs []chaosReplicaLog) (pairs []chaosLogPair, problems []string) {
	for i := range logs {
		if logs[i].Status != "VOTING" {
			continue
		}
		for j := i + 1; j < len(logs); j++ {
			if logs[j].Status != "VOTING" {
				continue
			}
			p := compareLearnedEntries(logs[i], logs[j])
			pairs = append(pairs, p)
			if p.Differ > 0 {
				problems = append(problems, "replicas' learned entries differ: "+p.String())
			}
		}
	}
	return pairs, problems
}

// compareLearnedEntries merges a's and b's ascending entries.
func compareLearnedEntries(a, b chaosReplicaLog) chaosLogPair {
	p := chaosLogPair{A: a.Name, B: b.Name}
	i, j := 0, 0
	for i < len(a.Entries) && j < len(b.Entries) {
		ea, eb := a.Entries[i], b.Entries[j]
		switch {
		case ea.Position < eb.Position:
			i++
			continue
		case ea.Position > eb.Position:
			j++
			continue
		}
		i++
		j++
		if ea.Tombstone || eb.Tombstone {
			p.Tombstones++
			continue
		}
		p.Compared++
		if ea.SHA256 != eb.SHA256 || ea.Type != eb.Type {
			if p.Differ == 0 {
				p.First, p.FirstA, p.FirstB = ea.Position, ea, eb
			}
			p.Differ++
		}
	}
	return p
}

// readChaosLogs reads every master's replica offline; the appliances must
// have stopped. A replica that cannot be read is a problem: a cleanly
// stopped master leaves a readable one.
func readChaosLogs(ms []*localMaster) (logs []chaosReplicaLog, problems []string) {
	for _, m := range ms {
		hs, es, err := readLearnedEntries(filepath.Join(m.WorkDir, ReplicatedLogDir))
		if err != nil {
			problems = append(problems, fmt.Sprintf("read %s's replicated log: %v", m.Name, err))
			continue
		}
		logs = append(logs, chaosReplicaLog{Name: m.Name, Status: replicaStatus(hs), Begin: uint64(hs.Begin), Entries: es})
	}
	return logs, problems
}

// checkChaosLogs is the end-of-run log check: it reads every master's
// replica (the appliances must have stopped) and compares the VOTING ones
// pairwise (compareChaosLogs). Besides differing values, it is a problem
// when fewer than a majority of the replicas are VOTING (a cluster that
// just served needs that many) or when a pair has no learned position in
// common, so that the check cannot pass by comparing nothing.
func checkChaosLogs(ms []*localMaster) (logs []chaosReplicaLog, pairs []chaosLogPair, problems []string) {
	logs, problems = readChaosLogs(ms)
	pairs, diffs := compareChaosLogs(logs)
	problems = append(problems, diffs...)
	return logs, pairs, append(problems, chaosLogCoverage(len(ms), logs, pairs)...)
}

// chaosLogCoverage returns the problems of a log check that compared too
// little: fewer than a majority of n replicas VOTING, or a pair that
// compared no position.
func chaosLogCoverage(n int, logs []chaosReplicaLog, pairs []chaosLogPair) []string {
	var problems []string
	var voting []string
	for _, l := range logs {
		if l.Status == "VOTING" {
			voting = append(voting, l.Name)
		}
	}
	if len(voting) < n/2+1 {
		problems = append(problems, fmt.Sprintf("log check: only %d of %d replicas are VOTING (%s)", len(voting), n, strings.Join(voting, ", ")))
	}
	for _, p := range pairs {
		if p.Compared == 0 {
			problems = append(problems, fmt.Sprintf("log check: %s and %s hold no learned position in common (does learned() know how the store marks learned positions?)", p.A, p.B))
		}
	}
	return problems
}

// formatLogPairs lists the pairs and the replicas left out, for the run's log.
func formatLogPairs(logs []chaosReplicaLog, pairs []chaosLogPair) string {
	var b strings.Builder
	for _, l := range logs {
		fmt.Fprintf(&b, "  %s: %s, begin %d, %d learned positions\n", l.Name, l.Status, l.Begin, len(l.Entries))
	}
	for _, p := range pairs {
		fmt.Fprintf(&b, "  %s\n", p)
	}
	return strings.TrimRight(b.String(), "\n")
}

func TestCompareChaosLogs(t *testing.T) {
	t.Parallel()
	e := func(pos uint64, sum string) learnedEntry {
		return learnedEntry{Position: pos, Type: "APPEND", SHA256: sum}
	}
	tomb := func(pos uint64) learnedEntry {
		return learnedEntry{Position: pos, Type: "NOP", Tombstone: true, SHA256: "t"}
	}
	voting := func(name string, es ...learnedEntry) chaosReplicaLog {
		return chaosReplicaLog{Name: name, Status: "VOTING", Entries: es}
	}
	tests := []struct {
		name         string
		logs         []chaosReplicaLog
		want         []chaosLogPair
		wantProblems int
	}{
		{
			name: "identical",
			logs: []chaosReplicaLog{voting("m1", e(0, "a"), e(1, "b")), voting("m2", e(0, "a"), e(1, "b"))},
			want: []chaosLogPair{{A: "m1", B: "m2", Compared: 2}},
		},
		{
			name:         "one position differs",
			logs:         []chaosReplicaLog{voting("m1", e(0, "a"), e(1, "b"), e(2, "c")), voting("m2", e(0, "a"), e(1, "x"), e(2, "c"))},
			want:         []chaosLogPair{{A: "m1", B: "m2", Compared: 3, Differ: 1, First: 1, FirstA: e(1, "b"), FirstB: e(1, "x")}},
			wantProblems: 1,
		},
		{
			name:         "same digest, other type",
			logs:         []chaosReplicaLog{voting("m1", e(4, "a")), voting("m2", learnedEntry{Position: 4, Type: "SNAPSHOT", SHA256: "a"})},
			want:         []chaosLogPair{{A: "m1", B: "m2", Compared: 1, Differ: 1, First: 4, FirstA: e(4, "a"), FirstB: learnedEntry{Position: 4, Type: "SNAPSHOT", SHA256: "a"}}},
			wantProblems: 1,
		},
		{
			name: "overlap only: truncated begin and unlearned positions",
			logs: []chaosReplicaLog{
				voting("m1", e(0, "a"), e(1, "b"), e(2, "c"), e(4, "e")),
				voting("m2", e(2, "c"), e(3, "d"), e(4, "e"), e(5, "f")),
			},
			want: []chaosLogPair{{A: "m1", B: "m2", Compared: 2}},
		},
		{
			name: "tombstones are skipped",
			logs: []chaosReplicaLog{voting("m1", tomb(0), e(1, "b")), voting("m2", e(0, "a"), e(1, "b"))},
			want: []chaosLogPair{{A: "m1", B: "m2", Compared: 1, Tombstones: 1}},
		},
		{
			name: "non-voting replicas are left out",
			logs: []chaosReplicaLog{
				voting("m1", e(0, "a")),
				{Name: "m2", Status: "RECOVERING", Entries: []learnedEntry{e(0, "z")}},
				voting("m3", e(0, "a")),
			},
			want: []chaosLogPair{{A: "m1", B: "m3", Compared: 1}},
		},
		{
			name: "every pair of three, the first difference of each",
			logs: []chaosReplicaLog{
				voting("m1", e(0, "a"), e(1, "b"), e(2, "c")),
				voting("m2", e(0, "a"), e(1, "b"), e(2, "c")),
				voting("m3", e(0, "a"), e(1, "y"), e(2, "z")),
			},
			want: []chaosLogPair{
				{A: "m1", B: "m2", Compared: 3},
				{A: "m1", B: "m3", Compared: 3, Differ: 2, First: 1, FirstA: e(1, "b"), FirstB: e(1, "y")},
				{A: "m2", B: "m3", Compared: 3, Differ: 2, First: 1, FirstA: e(1, "b"), FirstB: e(1, "y")},
			},
			wantProblems: 2,
		},
		{
			name: "no overlap compares nothing",
			logs: []chaosReplicaLog{voting("m1", e(0, "a")), voting("m2", e(1, "b"))},
			want: []chaosLogPair{{A: "m1", B: "m2"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, problems := compareChaosLogs(tt.logs)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("compareChaosLogs(%+v) (-want +got):\n%s", tt.logs, diff)
			}
			if len(problems) != tt.wantProblems {
				t.Errorf("compareChaosLogs(%+v): got problems %q, want %d", tt.logs, problems, tt.wantProblems)
			}
			for i, p := range got {
				if p.Differ == 0 {
					continue
				}
				// The problem names both replicas and the first position.
				want := fmt.Sprintf("%s–%s", p.A, p.B)
				pos := fmt.Sprintf("first at position %d", p.First)
				found := false
				for _, pr := range problems {
					found = found || strings.Contains(pr, want) && strings.Contains(pr, pos)
				}
				if !found {
					t.Errorf("pair %d: no problem names %q and %q in %q", i, want, pos, problems)
				}
			}
		})
	}
}

func TestChaosLogCoverage(t *testing.T) {
	t.Parallel()
	v := func(name string) chaosReplicaLog { return chaosReplicaLog{Name: name, Status: "VOTING"} }
	r := chaosReplicaLog{Name: "m3", Status: "RECOVERING"}
	tests := []struct {
		name  string
		n     int
		logs  []chaosReplicaLog
		pairs []chaosLogPair
		want  int // problems
	}{
		{"all voting, all compared", 3, []chaosReplicaLog{v("m1"), v("m2"), v("m3")}, []chaosLogPair{{A: "m1", B: "m2", Compared: 5}, {A: "m1", B: "m3", Compared: 5}, {A: "m2", B: "m3", Compared: 5}}, 0},
		{"a majority voting", 3, []chaosReplicaLog{v("m1"), v("m2"), r}, []chaosLogPair{{A: "m1", B: "m2", Compared: 5}}, 0},
		{"one voting of three", 3, []chaosReplicaLog{v("m1"), r}, nil, 1},
		{"a pair compared nothing", 3, []chaosReplicaLog{v("m1"), v("m2"), r}, []chaosLogPair{{A: "m1", B: "m2"}}, 1},
		{"two of five voting", 5, []chaosReplicaLog{v("m1"), v("m2")}, []chaosLogPair{{A: "m1", B: "m2", Compared: 1}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := chaosLogCoverage(tt.n, tt.logs, tt.pairs); len(got) != tt.want {
				t.Errorf("chaosLogCoverage(%d, %+v, %+v): got %q, want %d problems", tt.n, tt.logs, tt.pairs, got, tt.want)
			}
		})
	}
}

func TestChaosLogCheckReadsReplicas(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeSmallLog(t, dir, 20)
	var ms []*localMaster
	for i := range 3 {
		name := fmt.Sprintf("r%d", i+1)
		ms = append(ms, &localMaster{Name: name, WorkDir: filepath.Join(dir, name)})
	}
	logs, pairs, problems := checkChaosLogs(ms)
	if len(problems) != 0 || len(pairs) != 3 {
		t.Fatalf("agreeing replicas: got pairs %v, problems %q; want 3 pairs, no problem", pairs, problems)
	}
	for _, p := range pairs {
		if p.Compared < 21 || p.Differ != 0 {
			t.Errorf("agreeing replicas: %s, want ≥21 positions compared, none differing", p)
		}
	}

	// Change the value r2 stores at one learned position, keeping it
	// learned: the check must name that position and r2.
	const at = 7
	st, err := badgerstore.Open(filepath.Join(ms[1].WorkDir, ReplicatedLogDir), badgerstore.Options{GCInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	hs, err := st.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	a, ok, err := st.Action(at)
	if err != nil || !ok || !learned(hs, a) {
		t.Fatalf("r2's action at %d: %+v, %v, %v (learned to %d); want a learned one", at, a, ok, err, hs.LearnedTo)
	}
	a.Entry.Data = append(a.Entry.Data, '!')
	if err := st.Save(replog.Batch{Actions: []paxos.Action{a}, Sync: true}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	_, pairs, problems = checkChaosLogs(ms)
	want := []string{"r1–r2", "r2–r3"}
	if len(problems) != len(want) {
		t.Fatalf("one changed value: got problems %q, want %d", problems, len(want))
	}
	for i, w := range want {
		if !strings.Contains(problems[i], w) || !strings.Contains(problems[i], fmt.Sprintf("first at position %d", at)) || !strings.Contains(problems[i], "1 differ") {
			t.Errorf("problem %d: got %q, want it to name %s, position %d and 1 difference", i, problems[i], w, at)
		}
	}
	if len(logs) != 3 || pairs[0].Compared != pairs[2].Compared {
		t.Errorf("pairs %v: want the same count compared by every pair", pairs)
	}
}
