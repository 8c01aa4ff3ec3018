package appliance

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/paxos"
	"github.com/regent-ha/regent/replog/replogtest"
)

func TestLogAndBenchFlagErrors(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nothing-here")
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr string
	}{
		{"bench zero replicas", []string{"log", "bench", "-replicas", "0"}, ExitUsage, "-replicas must be between 1 and 9, not 0"},
		{"bench zero size", []string{"log", "bench", "-size=0"}, ExitUsage, "-size must be between"},
		{"bench zero writers", []string{"log", "bench", "-writers", "0"}, ExitUsage, "-writers must be between 1 and 100000, not 0"},
		{"bench negative count", []string{"log", "bench", "-count", "-5"}, ExitUsage, "-count and -catchup must not be negative"},
		{"bench zero duration", []string{"log", "bench", "-duration", "0s"}, ExitUsage, "-duration must be positive"},
		{"bench catch-up needs three", []string{"log", "bench", "-replicas", "1", "-catchup", "10"}, ExitUsage, "-catchup needs at least 3 replicas"},
		{"bench catch-up and count", []string{"log", "bench", "-catchup", "10", "-count", "10"}, ExitUsage, "-catchup and -count exclude each other"},
		{"bench catch-up profile without catch-up", []string{"log", "bench", "-catchup_cpuprofile", "x.prof"}, ExitUsage, "-catchup_cpuprofile needs -catchup"},
		{"bench both profiles", []string{"log", "bench", "-catchup", "10", "-catchup_cpuprofile", "x.prof", "-cpuprofile", "y.prof"}, ExitUsage, "excludes -cpuprofile"},
		{"bench bad duration", []string{"log", "bench", "-duration", "soon"}, ExitUsage, "invalid value \"soon\" for flag -duration"},
		{"bench unknown flag", []string{"log", "bench", "-writer", "2"}, ExitUsage, `unknown flag "-writer" (did you mean "writers"?)`},
		{"bench argument", []string{"log", "bench", "extra"}, ExitUsage, `unexpected argument "extra"`},
		{"inspect without work_dir", []string{"log", "inspect"}, ExitUsage, "-work_dir is required"},
		{"inspect missing replica", []string{"log", "inspect", "-work_dir", missing}, ExitFailure, "no replica at " + filepath.Join(missing, ReplicatedLogDir)},
		{"inspect argument", []string{"log", "inspect", "-work_dir", missing, "x"}, ExitUsage, `unexpected argument "x"`},
		{"initialize without work_dir", []string{"log", "initialize"}, ExitUsage, "-work_dir is required"},
		{"initialize unknown flag", []string{"log", "initialize", "-workdir", "x"}, ExitUsage, `unknown flag "-workdir" (did you mean "work_dir"?)`},
		{"http bench zero clients", []string{"bench", "-clients", "0"}, ExitUsage, "-clients must be between 1 and 10000, not 0"},
		{"http bench zero duration", []string{"bench", "-duration", "0s"}, ExitUsage, "-duration must be positive"},
		{"http bench bad address", []string{"bench", "-address", "ftp://x:1"}, ExitUsage, `-address: "ftp://x:1" is not an http address`},
		{"http bench zero roles", []string{"bench", "-roles", "0"}, ExitUsage, "-roles must be positive"},
		{"failover zero trials", []string{"bench", "failover", "-trials", "0"}, ExitUsage, "regent bench failover: -trials must be between 1 and 1000, not 0"},
		{"failover unknown flag", []string{"bench", "failover", "-trails", "3"}, ExitUsage, `unknown flag "-trails" (did you mean "trials"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, _, stderr := runCLI(t, nil, tt.args...)
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantStderr) {
				t.Errorf("regent %s\ngot  exit %d, stderr %q\nwant exit %d, stderr containing %q",
					strings.Join(tt.args, " "), code, stderr, tt.wantCode, tt.wantStderr)
			}
		})
	}
}

func TestLogCommandsHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"log", "bench", "-h"}, []string{"Usage: regent log bench [flags]", "-replicas", "-writers", "-catchup", "-json", "-cpuprofile"}},
		{[]string{"log", "inspect", "-h"}, []string{"Usage: regent log inspect [flags]", "-work_dir", "-json", "-entries"}},
		{[]string{"log", "initialize", "-h"}, []string{"Usage: regent log initialize [flags]", "-work_dir"}},
		{[]string{"bench", "-h"}, []string{"Usage: regent bench [flags]", "-clients", "-address", "-duration", "regent bench failover -h"}},
		{[]string{"bench", "failover", "-h"}, []string{"Usage: regent bench failover [flags]", "-trials"}},
	}
	for _, tt := range tests {
		code, stdout, _ := runCLI(t, nil, tt.args...)
		if code != ExitOK {
			t.Errorf("regent %s: exit %d, want 0", strings.Join(tt.args, " "), code)
		}
		for _, w := range tt.want {
			if !strings.Contains(stdout, w) {
				t.Errorf("regent %s: stdout lacks %q:\n%s", strings.Join(tt.args, " "), w, stdout)
			}
		}
	}
}

// writeSmallLog runs a three-replica log (real Badger, real gRPC on
// loopback) under dir, appends n entries through replica 1 and stops it. It
// returns each replica's ReplicaID.
func writeSmallLog(t *testing.T, dir string, n int) []paxos.ReplicaID {
	t.Helper()
	c, err := newLogCluster(dir, 3, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}()
	var ids []paxos.ReplicaID
	for i := range c.replicas {
		if err := c.startReplica(i); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.replicas[i].node.ID())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.elect(ctx, 0); err != nil {
		t.Fatal(err)
	}
	var last paxos.Position
	for i := range n {
		p, err := c.replicas[0].node.Append(ctx, []byte("entry "+string(rune('a'+i%26))))
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		last = p
	}
	// Wait until every replica has learned everything, so their stores
	// agree when inspected.
	for i := range c.replicas {
		if err := c.waitVoting(ctx, i, last+1); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func TestLogInspect(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ids := writeSmallLog(t, dir, 20)

	var reps []replicaReport
	for i := range ids {
		workDir := filepath.Join(dir, "r"+string(rune('1'+i)))
		code, stdout, stderr := runCLI(t, nil, "log", "inspect", "-work_dir", workDir, "-json")
		if code != ExitOK {
			t.Fatalf("log inspect %s: exit %d: %s", workDir, code, stderr)
		}
		var rep replicaReport
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("decode %s: %v", stdout, err)
		}
		reps = append(reps, rep)
	}
	for i, rep := range reps {
		if rep.Replica != uint64(ids[i]) || rep.Cluster == 0 || rep.Status != "VOTING" {
			t.Errorf("replica %d: id %d cluster %d status %s, want id %d, a cluster, VOTING", i+1, rep.Replica, rep.Cluster, rep.Status, ids[i])
		}
		// Position 0 holds the first membership, then 20 appends (and
		// perhaps a no-op or a membership change of the coordinator's).
		if rep.End < 21 || rep.Learned < 21 || rep.LearnedTo != rep.End || rep.Holes != 0 || rep.Unlearned != 0 {
			t.Errorf("replica %d: %+v, want every position of [0, ≥21) learned", i+1, rep)
		}
		if rep.DataBytes < int64(20*len("entry a")) || rep.DiskBytes <= 0 {
			t.Errorf("replica %d: entry bytes %d, disk bytes %d", i+1, rep.DataBytes, rep.DiskBytes)
		}
		var voters []uint64
		for _, m := range rep.Members {
			if m.Voter {
				voters = append(voters, m.ID)
			}
		}
		if len(voters) != 3 {
			t.Errorf("replica %d: members %+v, want 3 voters", i+1, rep.Members)
		}
		if diff := cmp.Diff(reps[0].Members, rep.Members); diff != "" {
			t.Errorf("replica %d: members differ from replica 1's (-1 +%d):\n%s", i+1, i+1, diff)
		}
		if rep.Cluster != reps[0].Cluster {
			t.Errorf("replica %d: cluster %d, replica 1 has %d", i+1, rep.Cluster, reps[0].Cluster)
		}
	}

	// -entries lists every learned position with its value's digest, the
	// same on every replica; -json gives one object per line.
	var texts []string
	for i, rep := range reps {
		workDir := filepath.Join(dir, "r"+string(rune('1'+i)))
		code, stdout, stderr := runCLI(t, nil, "log", "inspect", "-work_dir", workDir, "-entries")
		if code != ExitOK {
			t.Fatalf("log inspect -entries %s: exit %d: %s", workDir, code, stderr)
		}
		texts = append(texts, stdout)
		lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
		if uint64(len(lines)) != rep.Learned {
			t.Errorf("replica %d: -entries printed %d lines, want %d (its learned positions)", i+1, len(lines), rep.Learned)
		}
		code, stdout, stderr = runCLI(t, nil, "log", "inspect", "-work_dir", workDir, "-entries", "-json")
		if code != ExitOK {
			t.Fatalf("log inspect -entries -json %s: exit %d: %s", workDir, code, stderr)
		}
		dec := json.NewDecoder(strings.NewReader(stdout))
		var es []learnedEntry
		for dec.More() {
			var le learnedEntry
			if err := dec.Decode(&le); err != nil {
				t.Fatalf("replica %d: decode -entries -json: %v", i+1, err)
			}
			es = append(es, le)
		}
		if uint64(len(es)) != rep.Learned || len(es) == 0 || es[0].Position != rep.Begin || len(es[0].SHA256) != 64 {
			t.Errorf("replica %d: -entries -json gave %d entries starting %+v; want %d from position %d with a sha256", i+1, len(es), es[:min(1, len(es))], rep.Learned, rep.Begin)
		}
		var appends int
		for _, le := range es {
			if le.Type == paxos.EntryAppend.String() {
				appends++
			}
		}
		if appends != 20 {
			t.Errorf("replica %d: %d APPEND entries, want 20", i+1, appends)
		}
	}
	for i := 1; i < len(texts); i++ {
		if diff := cmp.Diff(texts[0], texts[i]); diff != "" {
			t.Errorf("-entries of replica %d differ from replica 1's (-1 +%d):\n%s", i+1, i+1, diff)
		}
	}

	// The table names the same facts.
	code, stdout, _ := runCLI(t, nil, "log", "inspect", "-work_dir", filepath.Join(dir, "r1"))
	for _, want := range []string{"status", "VOTING", "cluster ID", "begin / end", "holes", "membership", "size on disk"} {
		if code != ExitOK || !strings.Contains(stdout, want) {
			t.Errorf("log inspect table: exit %d, lacks %q:\n%s", code, want, stdout)
		}
	}

	// A replica in use is refused, politely.
	st, err := badgerstore.Open(filepath.Join(dir, "r1", ReplicatedLogDir), badgerstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	code, _, stderr := runCLI(t, nil, "log", "inspect", "-work_dir", filepath.Join(dir, "r1"))
	if code != ExitFailure || !strings.Contains(stderr, "in use by a running master") {
		t.Errorf("log inspect of a replica in use: exit %d, stderr %q; want %d and a polite refusal", code, stderr, ExitFailure)
	}
}

func TestLogInitialize(t *testing.T) {
	t.Parallel()
	t.Run("empty replica becomes STARTING", func(t *testing.T) {
		t.Parallel()
		work := t.TempDir()
		code, stdout, stderr := runCLI(t, nil, "log", "initialize", "-work_dir", work)
		if code != ExitOK || !strings.Contains(stdout, "initialized replica") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
		}
		hs := readHardState(t, filepath.Join(work, ReplicatedLogDir))
		if hs.Replica == 0 || hs.Status != paxos.StatusStarting || hs.Cluster != 0 {
			t.Errorf("hard state %+v, want a replica ID, STARTING, no cluster", hs)
		}
		// Twice is refused: the replica is no longer EMPTY.
		code, _, stderr = runCLI(t, nil, "log", "initialize", "-work_dir", work)
		if code != ExitFailure || !strings.Contains(stderr, "replica is not empty") || !strings.Contains(stderr, "STARTING") {
			t.Errorf("second initialize: exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("store of an EMPTY replica keeps its ID", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), ReplicatedLogDir)
		st, err := badgerstore.Open(dir, badgerstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Save(replog.Batch{HardState: &paxos.HardState{Replica: 42, Status: paxos.StatusEmpty}, Sync: true}); err != nil {
			t.Fatal(err)
		}
		st.Close()
		id, err := initializeReplica(dir, hclog.NewNullLogger())
		if err != nil || id != 42 {
			t.Fatalf("initializeReplica = %d, %v; want 42, nil", id, err)
		}
		if hs := readHardState(t, dir); hs.Status != paxos.StatusStarting {
			t.Errorf("status %v, want STARTING", hs.Status)
		}
	})
	t.Run("replica with positions is refused", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), ReplicatedLogDir)
		st, err := badgerstore.Open(dir, badgerstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = st.Save(replog.Batch{
			HardState: &paxos.HardState{Replica: 7, Status: paxos.StatusEmpty},
			Actions:   []paxos.Action{{Position: 3, Learned: true, Entry: paxos.Entry{Type: paxos.EntryAppend, Data: []byte("x")}}},
			Sync:      true,
		})
		if err != nil {
			t.Fatal(err)
		}
		st.Close()
		_, err = initializeReplica(dir, hclog.NewNullLogger())
		if !errors.Is(err, errNotEmpty) || !strings.Contains(err.Error(), "positions up to 3") {
			t.Errorf("initializeReplica = %v, want errNotEmpty naming position 3", err)
		}
		if hs := readHardState(t, dir); hs.Status != paxos.StatusEmpty {
			t.Errorf("status %v after a refusal, want EMPTY untouched", hs.Status)
		}
	})
	t.Run("VOTING replica is refused", func(t *testing.T) {
		t.Parallel()
		dir := filepath.Join(t.TempDir(), ReplicatedLogDir)
		st, err := badgerstore.Open(dir, badgerstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Save(replog.Batch{HardState: &paxos.HardState{Replica: 9, Cluster: 5, Status: paxos.StatusVoting}, Sync: true}); err != nil {
			t.Fatal(err)
		}
		st.Close()
		if _, err := initializeReplica(dir, hclog.NewNullLogger()); !errors.Is(err, errNotEmpty) {
			t.Errorf("initializeReplica = %v, want errNotEmpty", err)
		}
	})
	t.Run("replica in use is refused", func(t *testing.T) {
		t.Parallel()
		work := t.TempDir()
		st, err := badgerstore.Open(filepath.Join(work, ReplicatedLogDir), badgerstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		code, _, stderr := runCLI(t, nil, "log", "initialize", "-work_dir", work)
		if code != ExitFailure || !strings.Contains(stderr, "in use by a running master") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
}

// TestInitializedLogElects checks that initializing every replica is what
// the core needs to form a log without auto-initialisation: nodes with
// AutoInitialize off on initialized stores elect a coordinator and learn
// appends.
func TestInitializedLogElects(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	masters := []string{"a:1", "b:1", "c:1"}
	net := replogtest.NewNetwork(1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var nodes []*replog.Node
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i, addr := range masters {
		dir := filepath.Join(root, string(rune('a'+i)))
		id, err := initializeReplica(dir, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		st, err := badgerstore.Open(dir, badgerstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		n, err := replog.New(replog.Config{Addr: addr, Masters: masters, Quorum: 2, AutoInitialize: false, TickInterval: 5 * time.Millisecond}, st)
		if err != nil {
			t.Fatal(err)
		}
		if n.ID() != paxos.ReplicaID(id) {
			t.Fatalf("node took replica ID %d, initialize wrote %d", n.ID(), id)
		}
		tr := net.Join(addr, n.ID, n.Step)
		wg.Go(func() {
			if err := n.Run(ctx, tr); err != nil {
				t.Error(err)
			}
			st.Close()
		})
		nodes = append(nodes, n)
	}
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := nodes[0].Elect(actx)
		acancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no coordinator elected on initialized replicas: %v (status %+v)", err, nodes[0].Status())
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond): // the replicas meet through their recover rounds
		}
	}
	if _, err := nodes[0].Append(ctx, []byte("hello")); err != nil {
		t.Fatalf("append: %v", err)
	}
	if s := nodes[0].Status(); s.Cluster == 0 || s.ReplicaStatus != paxos.StatusVoting || s.Voters != 3 {
		t.Errorf("status %+v, want a cluster with 3 voters, VOTING", s)
	}
}

func readHardState(t *testing.T, dir string) paxos.HardState {
	t.Helper()
	st, err := badgerstore.Open(dir, badgerstore.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hs, err := st.InitialState()
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

func TestLogBenchRuns(t *testing.T) {
	t.Parallel()
	code, stdout, stderr := runCLI(t, nil, "log", "bench", "-count", "200", "-writers", "4", "-json", "-dir", filepath.Join(t.TempDir(), "bench"))
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res logBenchResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("decode %q: %v", stdout, err)
	}
	// Sane figures, not speeds: the machine may be busy.
	if res.Appends != 200 || res.Errors != 0 {
		t.Errorf("appends %d, errors %d; want 200, 0", res.Appends, res.Errors)
	}
	if res.AppendsPerS <= 0 || res.MBPerS <= 0 || res.P50Ms <= 0 || res.P99Ms < res.P50Ms || res.P999Ms < res.P99Ms {
		t.Errorf("figures not sane: %+v", res)
	}
	if res.BatchMean < 1 || res.FsyncsPerS <= 0 || res.RSSMB <= 0 {
		t.Errorf("batch %v, fsyncs/s %v, rss %v MiB; want ≥ 1, > 0, > 0", res.BatchMean, res.FsyncsPerS, res.RSSMB)
	}
	// Every key the issue names is in the JSON object.
	var keys map[string]any
	if err := json.Unmarshal([]byte(stdout), &keys); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"appends_per_s", "mb_per_s", "p50_ms", "p99_ms", "p999_ms", "batch_mean", "fsyncs_per_s", "rss_mb"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("JSON lacks %q: %s", k, stdout)
		}
	}
}

func TestLogBenchCatchup(t *testing.T) {
	if testing.Short() {
		t.Skip("catch-up run: skipped with -short")
	}
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "bench")
	prof := filepath.Join(t.TempDir(), "catchup.prof")
	code, stdout, stderr := runCLI(t, nil, "log", "bench", "-catchup", "500", "-writers", "16", "-size", "256", "-dir", dir, "-catchup_cpuprofile", prof)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"appends/s", "catch-up", "positions/s", "catch-up traffic"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if fi, err := os.Stat(prof); err != nil || fi.Size() == 0 {
		t.Errorf("catch-up profile: %v, %v", fi, err)
	}
	// The given directory is kept; the wiped replica came back with data.
	if _, err := os.Stat(filepath.Join(dir, "r3", ReplicatedLogDir)); err != nil {
		t.Errorf("the wiped replica's store: %v", err)
	}
	code, _, _ = runCLI(t, nil, "log", "bench", "-count", "1", "-dir", dir)
	if code != ExitUsage {
		t.Errorf("log bench into a used -dir: exit %d, want %d", code, ExitUsage)
	}
}

func TestEntryDigest(t *testing.T) {
	t.Parallel()
	base := paxos.Entry{Type: paxos.EntryAppend, Data: []byte("v")}
	cfg := &paxos.Membership{Cluster: 7, Members: []paxos.Member{{ID: 1, Addr: "a:1", Voter: true}}}
	tests := []struct {
		name string
		e    paxos.Entry
		same bool // the same digest as base
	}{
		{"equal copy", paxos.Entry{Type: paxos.EntryAppend, Data: []byte("v")}, true},
		{"other data", paxos.Entry{Type: paxos.EntryAppend, Data: []byte("w")}, false},
		{"longer data", paxos.Entry{Type: paxos.EntryAppend, Data: []byte("v\x00")}, false},
		{"other type", paxos.Entry{Type: paxos.EntrySnapshot, Data: []byte("v")}, false},
		{"truncation point", paxos.Entry{Type: paxos.EntryAppend, Data: []byte("v"), To: 3}, false},
		{"tombstone", paxos.Entry{Type: paxos.EntryAppend, Data: []byte("v"), Tombstone: true}, false},
		{"membership", paxos.Entry{Type: paxos.EntryAppend, Data: []byte("v"), Config: cfg}, false},
	}
	want := entryDigest(base)
	for _, tt := range tests {
		if got := entryDigest(tt.e); (got == want) != tt.same {
			t.Errorf("entryDigest(%+v) == entryDigest(%+v): got %v, want %v", tt.e, base, got == want, tt.same)
		}
	}
	// Nil and empty data are the same value to the core, and so here.
	if entryDigest(paxos.Entry{Type: paxos.EntryNop}) != entryDigest(paxos.Entry{Type: paxos.EntryNop, Data: []byte{}}) {
		t.Error("nil and empty data digest differently")
	}
	// Each membership field counts.
	members := []paxos.Membership{
		*cfg,
		{Cluster: 8, Members: cfg.Members},
		{Cluster: 7, Members: []paxos.Member{{ID: 2, Addr: "a:1", Voter: true}}},
		{Cluster: 7, Members: []paxos.Member{{ID: 1, Addr: "a:2", Voter: true}}},
		{Cluster: 7, Members: []paxos.Member{{ID: 1, Addr: "a:1"}}},
		{Cluster: 7},
	}
	seen := map[[32]byte]int{}
	for i, m := range members {
		d := entryDigest(paxos.Entry{Type: paxos.EntryConfig, Config: &m})
		if j, ok := seen[d]; ok {
			t.Errorf("memberships %d and %d digest alike: %+v, %+v", j, i, members[j], m)
		}
		seen[d] = i
	}
}

func TestLearnedRule(t *testing.T) {
	t.Parallel()
	hs := paxos.HardState{Replica: 1, Status: paxos.StatusVoting}
	marked := hs
	marked.LearnedTo = 5
	performed := paxos.Proposal{Round: 1, Replica: 1}
	tests := []struct {
		name string
		hs   paxos.HardState
		a    paxos.Action
		want bool
	}{
		{"flag", hs, paxos.Action{Position: 3, Learned: true}, true},
		{"written, not learned", hs, paxos.Action{Position: 3, Performed: performed}, false},
		{"nothing", hs, paxos.Action{Position: 3}, false},
		{"below the watermark, no flag", marked, paxos.Action{Position: 4, Performed: performed}, true},
		{"at the watermark, no flag", marked, paxos.Action{Position: 5, Performed: performed}, false},
		{"above the watermark, flag", marked, paxos.Action{Position: 9, Learned: true}, true},
	}
	for _, tt := range tests {
		if got := learned(tt.hs, tt.a); got != tt.want {
			t.Errorf("%s: learned(%+v, %+v) = %v, want %v", tt.name, tt.hs, tt.a, got, tt.want)
		}
	}
}
