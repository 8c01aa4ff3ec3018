package master

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics holds the master's Prometheus registry and the recent samples
// behind the Mesos-style /metrics/snapshot percentiles.
type metrics struct {
	m         *Master
	reg       *prometheus.Registry
	storeHist *prometheus.HistogramVec
	fetchHist prometheus.Histogram
	httpHist  *prometheus.HistogramVec
	stages    *writeStages

	mu      sync.Mutex
	storeMs []float64 // recent store latencies, a ring of at most sampleCap
	storeAt int
	fetchMs float64
	fetched bool
}

const sampleCap = 1000

func newMetrics(m *Master) *metrics {
	mt := &metrics{m: m, reg: prometheus.NewRegistry()}
	buckets := prometheus.ExponentialBuckets(0.0001, 2, 18) // 100µs .. ~13s
	mt.storeHist = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "regent_registrar_log_write_seconds", Help: "Latency of registry writes to the replicated log, until learned by a quorum.", Buckets: buckets,
	}, []string{"kind"})
	mt.fetchHist = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "regent_registrar_fetch_seconds", Help: "Registry recovery time after election.", Buckets: buckets,
	})
	mt.httpHist = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "regent_http_request_duration_seconds", Help: "Latency of API requests.", Buckets: buckets,
	}, []string{"handler", "method", "code"})
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	mt.stages = newWriteStages()
	mt.reg.MustRegister(mt.stages.collectors()...)
	mt.reg.MustRegister(
		mt.storeHist, mt.fetchHist, mt.httpHist,
		gauge("regent_master_elected", "1 while this master leads.", func() float64 { return b2f(m.isLeading()) }),
		gauge("regent_master_uptime_seconds", "Seconds since the master started.", func() float64 { return m.cfg.Now().Sub(m.start).Seconds() }),
		gauge("regent_registrar_log_recovered", "1 once the local replica is VOTING.", func() float64 { return b2f(m.log.Status().Voting()) }),
		gauge("regent_registrar_log_ensemble_size", "Voters in the log's membership.", func() float64 { return float64(m.log.Status().Members) }),
		gauge("regent_registrar_log_reachable", "Voters this master can reach, itself included.", func() float64 { return float64(m.log.Status().Reachable) }),
		gauge("regent_registrar_log_lease_seconds", "Remaining coordinator lease as this master knows it.", func() float64 { return m.log.Status().Lease.Seconds() }),
		gauge("regent_registrar_queued_operations", "Operations waiting to be batched.", func() float64 { return float64(m.reg.queued.Load()) }),
		gauge("regent_registrar_registry_size_bytes", "Size of the serialised registry.", func() float64 { return float64(m.registrySize()) }),
		gauge("regent_registrar_applied_entries", "Log entries applied to the registry by this master.", func() float64 {
			var n uint64
			m.reg.mu.RLock()
			n = m.reg.applied
			m.reg.mu.RUnlock()
			return float64(n)
		}),
		gauge("regent_replog_catchup_active", "1 while the local replica catches up from a VOTING replica.", func() float64 { return b2f(m.log.Status().Catchup.Active) }),
		gauge("regent_replog_catchup_target_position", "Position the catch-up in progress catches up to (every position below it); 0 when none.", func() float64 { return float64(m.log.Status().Catchup.Target) }),
		gauge("regent_replog_catchup_positions", "Positions the catch-up in progress covers, from its beginning to its target; 0 when none.", func() float64 { return float64(m.log.Status().Catchup.Total()) }),
		gauge("regent_replog_catchup_learned_positions", "Positions learned since the catch-up in progress began; 0 when none.", func() float64 { return float64(m.log.Status().Catchup.Done()) }),
		gauge("regent_replog_catchup_positions_per_second", "Positions the catch-up in progress learned per second over the last 5 s; 0 when none or not yet measured.", func() float64 { return m.log.Status().Catchup.Rate }),
		gauge("regent_replog_catchup_eta_seconds", "Time left to the catch-up in progress at its current rate; 0 when none or unknown.", func() float64 { return m.log.Status().Catchup.ETA.Seconds() }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "regent_replog_catchup_learned_positions_total", Help: "Positions learned while catching up since the master started."}, func() float64 {
			return float64(m.log.Status().Catchup.LearnedTotal)
		}),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "regent_registrar_leader_records_applied_total", Help: "Leader records (one per election) applied by this master."}, func() float64 {
			m.reg.mu.RLock()
			defer m.reg.mu.RUnlock()
			return float64(m.reg.leaders)
		}),
	)
	return mt
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// observeStore records one registry write.
func (mt *metrics) observeStore(kind string, d time.Duration) {
	mt.storeHist.WithLabelValues(kind).Observe(d.Seconds())
	mt.mu.Lock()
	defer mt.mu.Unlock()
	ms := float64(d) / float64(time.Millisecond)
	if len(mt.storeMs) < sampleCap {
		mt.storeMs = append(mt.storeMs, ms)
	} else {
		mt.storeMs[mt.storeAt] = ms
		mt.storeAt = (mt.storeAt + 1) % sampleCap
	}
}

// observeFetch records the registry recovery time.
func (mt *metrics) observeFetch(d time.Duration) {
	mt.fetchHist.Observe(d.Seconds())
	mt.mu.Lock()
	defer mt.mu.Unlock()
	mt.fetchMs, mt.fetched = float64(d)/float64(time.Millisecond), true
}

// registrySize is the size of the registry's JSON.
func (m *Master) registrySize() int {
	var n int
	m.reg.view(func(r *Registry) {
		b, err := json.Marshal(r)
		if err == nil {
			n = len(b)
		}
	})
	return n
}

// snapshot returns the Mesos-style metrics map.
func (mt *metrics) snapshot() map[string]float64 {
	m := mt.m
	st := m.log.Status()
	m.mu.RLock()
	leading, recovered := m.leading, m.recovered
	m.mu.RUnlock()
	out := map[string]float64{
		"master/elected":                  b2f(leading),
		"master/recovered":                b2f(recovered),
		"master/uptime_secs":              m.cfg.Now().Sub(m.start).Seconds(),
		"registrar/log/recovered":         b2f(st.Voting()),
		"registrar/log/ensemble_size":     float64(st.Members),
		"registrar/log/reachable":         float64(st.Reachable),
		"registrar/log/quorum":            float64(st.Quorum),
		"registrar/log/begin":             float64(st.Begin),
		"registrar/log/end":               float64(st.End),
		"registrar/log/lease_secs":        math.Max(0, st.Lease.Seconds()),
		"registrar/queued_operations":     float64(m.reg.queued.Load()),
		"registrar/registry_size_bytes":   float64(m.registrySize()),
		"registrar/log/coordinator":       b2f(st.Coordinator),
		"master/lease_lapses":             float64(m.lapses.Load()),
		"registrar/applied_entries_total": 0,
	}
	cu := st.Catchup
	out["replog/catchup_active"] = b2f(cu.Active)
	out["replog/catchup_target"] = float64(cu.Target)
	out["replog/catchup_positions"] = float64(cu.Total())
	out["replog/catchup_learned"] = float64(cu.Done())
	out["replog/catchup_positions_per_second"] = cu.Rate
	out["replog/catchup_eta_secs"] = cu.ETA.Seconds()
	out["replog/catchup_learned_total"] = float64(cu.LearnedTotal)
	m.reg.mu.RLock()
	out["registrar/applied_entries_total"] = float64(m.reg.applied)
	// One leader record is written per election: the difference between
	// two readings on a master that did not restart is the number of
	// leader changes between them ("regent bench" reports it).
	out["registrar/leader_records_applied"] = float64(m.reg.leaders)
	m.reg.mu.RUnlock()
	mt.mu.Lock()
	samples := slices.Clone(mt.storeMs)
	if mt.fetched {
		out["registrar/state_fetch_ms"] = mt.fetchMs
	}
	mt.mu.Unlock()
	if len(samples) > 0 {
		last := samples[len(samples)-1]
		if len(samples) == sampleCap {
			last = samples[(mt.storeAt+sampleCap-1)%sampleCap]
		}
		out["registrar/state_store_ms"] = last
		slices.Sort(samples)
		out["registrar/state_store_ms/count"] = float64(len(samples))
		out["registrar/state_store_ms/min"] = samples[0]
		out["registrar/state_store_ms/max"] = samples[len(samples)-1]
		for _, p := range []struct {
			name string
			q    float64
		}{{"p50", 0.5}, {"p90", 0.9}, {"p95", 0.95}, {"p99", 0.99}, {"p999", 0.999}, {"p9999", 0.9999}} {
			out["registrar/state_store_ms/"+p.name] = percentile(samples, p.q)
		}
	}
	return out
}

// percentile returns the q-th quantile of sorted samples (nearest rank).
func percentile(sorted []float64, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// prometheusHandler serves /metrics.
func (mt *metrics) prometheusHandler() http.Handler {
	return promhttp.HandlerFor(mt.reg, promhttp.HandlerOpts{})
}

// instrument records each request's latency by route pattern.
func (mt *metrics) instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		h.ServeHTTP(sw, r)
		pattern := r.Pattern
		if pattern == "" {
			pattern = "unmatched"
		}
		mt.httpHist.WithLabelValues(pattern, r.Method, strconv.Itoa(sw.code)).Observe(time.Since(start).Seconds())
	})
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
