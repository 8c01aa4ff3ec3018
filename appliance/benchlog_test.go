package appliance

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
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
