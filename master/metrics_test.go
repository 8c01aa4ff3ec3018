package master

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
)

// statusLog is a fakeLog whose Status is set by the test.
type statusLog struct {
	*fakeLog
	st LogStatus
}

func (l *statusLog) Status() LogStatus { return l.st }

// newMetricsMaster returns a master (not running) over a log whose status
// is st.
func newMetricsMaster(t *testing.T, st LogStatus) *Master {
	t.Helper()
	cfg := Config{
		ID: "master-5050", Cluster: "test", Hostname: "m5050.test", IP: "127.0.0.1", Port: 5050,
		Listener: newChanListener(5050), Quorum: 2, Version: "0.1.0", Lease: 2 * time.Second,
		Logger: hclog.New(&hclog.LoggerOptions{Output: tWriter{t}, Level: hclog.Debug}),
	}
	m, err := New(cfg, &statusLog{fakeLog: newFakeCluster().node(), st: st})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

// The catch-up's progress appears in /metrics/snapshot and in the
// Prometheus registry, and is zero (but for the counter) when no catch-up
// is in progress.
func TestMetricsCatchup(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		catchup  LogCatchup
		snapshot map[string]float64
		prom     map[string]float64
	}{{
		name:    "catching up",
		catchup: LogCatchup{Active: true, From: 100, Target: 1_000_100, LearnedTo: 450_100, Rate: 31_000, ETA: 18 * time.Second, LearnedTotal: 460_000},
		snapshot: map[string]float64{
			"replog/catchup_active": 1, "replog/catchup_target": 1_000_100, "replog/catchup_positions": 1_000_000,
			"replog/catchup_learned": 450_000, "replog/catchup_positions_per_second": 31_000, "replog/catchup_eta_secs": 18,
			"replog/catchup_learned_total": 460_000,
		},
		prom: map[string]float64{
			"regent_replog_catchup_active": 1, "regent_replog_catchup_target_position": 1_000_100, "regent_replog_catchup_positions": 1_000_000,
			"regent_replog_catchup_learned_positions": 450_000, "regent_replog_catchup_positions_per_second": 31_000,
			"regent_replog_catchup_eta_seconds": 18, "regent_replog_catchup_learned_positions_total": 460_000,
		},
	}, {
		name:    "not catching up",
		catchup: LogCatchup{LearnedTotal: 7},
		snapshot: map[string]float64{
			"replog/catchup_active": 0, "replog/catchup_target": 0, "replog/catchup_positions": 0,
			"replog/catchup_learned": 0, "replog/catchup_positions_per_second": 0, "replog/catchup_eta_secs": 0,
			"replog/catchup_learned_total": 7,
		},
		prom: map[string]float64{
			"regent_replog_catchup_active": 0, "regent_replog_catchup_target_position": 0, "regent_replog_catchup_positions": 0,
			"regent_replog_catchup_learned_positions": 0, "regent_replog_catchup_positions_per_second": 0,
			"regent_replog_catchup_eta_seconds": 0, "regent_replog_catchup_learned_positions_total": 7,
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := newMetricsMaster(t, LogStatus{Replica: "RECOVERING", Catchup: tt.catchup})
			snap := m.metrics.snapshot()
			got := map[string]float64{}
			for k := range tt.snapshot {
				if v, ok := snap[k]; ok {
					got[k] = v
				}
			}
			if diff := cmp.Diff(tt.snapshot, got); diff != "" {
				t.Errorf("catch-up %+v: snapshot (-want +got):\n%s", tt.catchup, diff)
			}
			mfs, err := m.metrics.reg.Gather()
			if err != nil {
				t.Fatalf("Gather: %v", err)
			}
			got = map[string]float64{}
			for _, mf := range mfs {
				if _, ok := tt.prom[mf.GetName()]; !ok {
					continue
				}
				for _, mm := range mf.GetMetric() {
					switch {
					case mm.GetGauge() != nil:
						got[mf.GetName()] = mm.GetGauge().GetValue()
					case mm.GetCounter() != nil:
						got[mf.GetName()] = mm.GetCounter().GetValue()
					default:
						t.Errorf("%s is a %v, want a gauge or counter", mf.GetName(), mf.GetType())
					}
				}
			}
			if diff := cmp.Diff(tt.prom, got); diff != "" {
				t.Errorf("catch-up %+v: Prometheus (-want +got):\n%s", tt.catchup, diff)
			}
		})
	}
}
