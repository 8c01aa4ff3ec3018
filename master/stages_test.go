package master

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/google/go-cmp/cmp"
)

// histCounts returns the sample count and sum of every histogram series of
// tm's /metrics registry, keyed by name (and stage label, as "name/stage").
func histCounts(t *testing.T, tm *testMaster) map[string][2]float64 {
	t.Helper()
	fams, err := tm.metrics.reg.Gather()
	if err != nil {
		t.Fatalf("gather metrics: %v", err)
	}
	out := map[string][2]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			h := m.GetHistogram()
			if h == nil {
				continue
			}
			key := f.GetName()
			for _, l := range m.GetLabel() {
				if l.GetName() == "stage" {
					key += "/" + l.GetValue()
				}
			}
			out[key] = [2]float64{float64(h.GetSampleCount()), h.GetSampleSum()}
		}
	}
	return out
}

// TestRegistrarWriteStages checks that the leader counts each operation
// once in every per-operation stage and each batch once in the per-batch
// metrics: 20 writes, one batch in flight, so a batch of 1 then one of 19.
func TestRegistrarWriteStages(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newFakeCluster()
		m := startMaster(t, c, 5050, func(cfg *Config) { cfg.MaxInFlight = 1 })
		settle()
		before := histCounts(t, m)
		release := m.log.holdAppends()
		const n = 20
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				if code := m.do("PUT", "/weights", fmt.Sprintf(`[{"role":"r%02d","weight":1}]`, i)).Code; code != 200 {
					t.Errorf("PUT /weights %d = %d", i, code)
				}
			})
			synctest.Wait()
		}
		release()
		wg.Wait()
		after := histCounts(t, m)
		got := map[string]float64{}
		for k, v := range after {
			if d := v[0] - before[k][0]; d != 0 {
				got[k] = d
			}
		}
		want := map[string]float64{
			"regent_http_request_duration_seconds":        n,
			"regent_registrar_log_write_seconds":          2,
			"regent_registrar_write_stage_seconds/queue":  n,
			"regent_registrar_write_stage_seconds/slot":   2,
			"regent_registrar_write_stage_seconds/encode": n,
			"regent_registrar_write_stage_seconds/append": n,
			"regent_registrar_write_stage_seconds/learn":  n,
			"regent_registrar_write_stage_seconds/apply":  n,
			"regent_registrar_write_stage_seconds/reply":  n,
			"regent_registrar_batch_operations":           2,
			"regent_registrar_batch_bytes":                2,
			"regent_registrar_batches_in_flight":          2,
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("observations during the writes (-want +got):\n%s", diff)
		}
		sums := map[string]float64{}
		for _, k := range []string{"regent_registrar_batch_operations", "regent_registrar_batches_in_flight"} {
			sums[k] = after[k][1] - before[k][1]
		}
		wantSums := map[string]float64{
			"regent_registrar_batch_operations":  n, // 1 + 19
			"regent_registrar_batches_in_flight": 2, // each batch alone in flight
		}
		if diff := cmp.Diff(wantSums, sums); diff != "" {
			t.Errorf("sums during the writes (-want +got):\n%s", diff)
		}
	})
}
