package appliance

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/regent-ha/regent/replog/badgerstore"
)

// TestLogBenchStagesAndTrace: with one writer the bench times the stages of
// each append, and -trace writes an execution trace of the appends.
func TestLogBenchStagesAndTrace(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tracePath := filepath.Join(dir, "trace.out")
	code, stdout, stderr := runCLI(t, nil, "log", "bench", "-count", "50", "-json", "-trace", tracePath, "-dir", filepath.Join(dir, "bench"))
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res logBenchResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("decode %q: %v", stdout, err)
	}
	if len(res.Stages) != len(stageSpans) {
		t.Fatalf("%d stages, want %d: %+v", len(res.Stages), len(stageSpans), res.Stages)
	}
	whole := res.Stages[len(res.Stages)-1]
	if whole.Count != res.Appends || whole.P50Ms <= 0 {
		t.Errorf("stage %q: %d appends, p50 %v ms; want %d, > 0", whole.Name, whole.Count, whole.P50Ms, res.Appends)
	}
	for _, sp := range res.Stages {
		if sp.Count == 0 {
			t.Errorf("stage %q recorded no append", sp.Name)
		}
	}
	fi, err := os.Stat(tracePath)
	if err != nil || fi.Size() == 0 {
		t.Errorf("trace file: %v, %v; want a non-empty file", fi, err)
	}
}

// TestLogBenchProcesses: with -processes each replica runs in a process of
// its own (the regent binary's hidden "log bench-replica"), and the bench
// reports every replica's memory, rss_mb being the largest.
func TestLogBenchProcesses(t *testing.T) {
	bin := buildRegent(t)
	t.Parallel()
	dir := t.TempDir()
	var stderr bytes.Buffer
	res, err := runLogBench(context.Background(), logBenchOptions{
		Replicas: 3, Size: 512, Writers: 4, Count: 300, TruncateEvery: 100,
		Processes: true, Binary: bin, ChildStderr: &stderr,
		ChildMemProfile: filepath.Join(dir, "heap"),
		Dir:             filepath.Join(dir, "bench"),
	})
	if err != nil {
		t.Fatalf("runLogBench: %v\nreplicas' stderr:\n%s", err, stderr.String())
	}
	if !res.Processes || res.Appends != 300 || res.Errors != 0 || res.Truncations < 1 {
		t.Errorf("processes %v, appends %d, errors %d, truncations %d; want true, 300, 0, ≥ 1", res.Processes, res.Appends, res.Errors, res.Truncations)
	}
	if res.P50Ms <= 0 || res.P99Ms < res.P50Ms || res.BatchMean < 1 || res.FsyncsPerS <= 0 || res.FollowerFsyncsPerS <= 0 {
		t.Errorf("figures not sane: %+v", res)
	}
	if len(res.ReplicaRSS) != 3 {
		t.Fatalf("%d replicas' RSS, want 3: %+v", len(res.ReplicaRSS), res.ReplicaRSS)
	}
	var peak float64
	for i, m := range res.ReplicaRSS {
		if m.PeakMB <= 0 || m.NowMB <= 0 || m.NowMB > m.PeakMB || m.AnonMB <= 0 {
			t.Errorf("replica %d: %+v; want 0 < now ≤ peak, anonymous > 0", i+1, m)
		}
		peak = max(peak, m.PeakMB)
		// Each replica wrote its store in its own directory, and its heap
		// profile.
		if _, err := os.Stat(filepath.Join(dir, "bench", "r"+strconv.Itoa(i+1), ReplicatedLogDir)); err != nil {
			t.Errorf("replica %d's store: %v", i+1, err)
		}
		if fi, err := os.Stat(filepath.Join(dir, "heap.r"+strconv.Itoa(i+1))); err != nil || fi.Size() == 0 {
			t.Errorf("replica %d's heap profile: %v", i+1, err)
		}
	}
	if res.RSSMB != peak {
		t.Errorf("rss_mb %v, want the largest replica's peak %v", res.RSSMB, peak)
	}
	// The table says the RSS is per replica.
	var out bytes.Buffer
	res.writeTable(&out)
	for _, want := range []string{"per replica", "replica 3"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// TestLogBenchReplicaExitsWithoutBench: a replica child whose stdin ends
// (the bench is gone) stops and returns, releasing its store.
func TestLogBenchReplicaExitsWithoutBench(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = serveBenchReplica(context.Background(), strings.NewReader(`{"op":"mark"}`+"\n"+`{"op":"stats"}`+"\n"), &out, benchReplicaOptions{
		Index: 0, Masters: []string{"127.0.0.1:" + strconv.Itoa(ports[0])}, Dir: dir, Logger: hclog.NewNullLogger(),
	})
	if err != nil {
		t.Fatalf("serveBenchReplica: %v", err)
	}
	// Three replies: started, mark, stats.
	if n := strings.Count(out.String(), "\n"); n != 3 || strings.Contains(out.String(), "err") {
		t.Errorf("replies %q; want 3 without errors", out.String())
	}
	// The store is closed: it opens again.
	st, err := badgerstore.Open(filepath.Join(dir, "r1", ReplicatedLogDir), badgerstore.Options{})
	if err != nil {
		t.Fatalf("reopen the replica's store: %v", err)
	}
	st.Close()
}

// TestLogBenchTruncates: with -truncate_every the coordinator truncates the
// log as a master does, and the replicas' stores begin past position 0.
func TestLogBenchTruncates(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "bench")
	code, stdout, stderr := runCLI(t, nil, "log", "bench", "-count", "600", "-writers", "8", "-size", "256", "-truncate_every", "200", "-json", "-dir", dir)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var res logBenchResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("decode %q: %v", stdout, err)
	}
	if res.Appends != 600 || res.Errors != 0 || res.Truncations < 1 {
		t.Fatalf("appends %d, errors %d, truncations %d; want 600, 0, ≥ 1", res.Appends, res.Errors, res.Truncations)
	}
	// The coordinator learned every truncation before Truncate returned
	// (the followers learn them a moment later, maybe after the bench).
	rep, err := inspectReplica(filepath.Join(dir, "r1", ReplicatedLogDir))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Begin < 200 {
		t.Errorf("the coordinator's replica begins at %d after %d truncations; want ≥ 200", rep.Begin, res.Truncations)
	}
}
