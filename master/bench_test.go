package master

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRegistryWrite measures PUT /weights through the handler on a
// leader over the in-memory fake log (which learns at once): the cost of
// the master's own path (decode, validate, batch, encode, apply, reply).
func BenchmarkRegistryWrite(b *testing.B) {
	for _, lat := range []time.Duration{0, 600 * time.Microsecond} {
		b.Run(fmt.Sprintf("latency=%v", lat), func(b *testing.B) { benchRegistryWrite(b, lat) })
	}
}

// benchRegistryWrite runs BenchmarkRegistryWrite with every log write
// taking lat (the replicated log appends a batch in about 0.6 ms).
func benchRegistryWrite(b *testing.B, lat time.Duration) {
	leading := make(chan struct{})
	var once sync.Once
	cfg := Config{
		ID: "bench", IP: "127.0.0.1", Listener: newChanListener(5050),
		CheckInterval: time.Millisecond, ElectionJitter: time.Millisecond, Lease: time.Second,
		Heartbeat: func(s string) {
			if s == "leading" {
				once.Do(func() { close(leading) })
			}
		},
	}
	lg := newFakeCluster().node()
	lg.latency = lat
	m, err := New(cfg, lg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("Run = %v after cancel, want nil", err)
		}
	}()
	<-leading
	var (
		mu   sync.Mutex
		lats []time.Duration
		n    atomic.Int64
	)
	b.SetParallelism(32) // 64 clients on 2 cores, as regent bench runs
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		var local []time.Duration
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Sprintf(`[{"role":"r%d","weight":%d}]`, i%1000, i%7+1) // 1000 roles, as regent bench writes
			req := httptest.NewRequest("PUT", "/weights", strings.NewReader(body))
			rec := httptest.NewRecorder()
			start := time.Now()
			m.Handler().ServeHTTP(rec, req)
			local = append(local, time.Since(start))
			if rec.Code != 200 {
				b.Errorf("PUT /weights = %d %s", rec.Code, rec.Body.String())
				return
			}
		}
		mu.Lock()
		lats = append(lats, local...)
		mu.Unlock()
	})
	b.StopTimer()
	slices.Sort(lats)
	if len(lats) > 0 {
		b.ReportMetric(float64(lats[len(lats)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds()), "p99-µs")
		b.ReportMetric(float64(len(lats))/b.Elapsed().Seconds(), "writes/s")
		lg.mu.Lock()
		b.ReportMetric(float64(len(lats))/float64(max(lg.appends, 1)), "ops/append")
		lg.mu.Unlock()
	}
}

// BenchmarkApplyWeights measures applying one weight update to a registry
// of 1000 roles, finding the role by scanning and through a roleIndex (as
// the registrar does).
func BenchmarkApplyWeights(b *testing.B) {
	for _, indexed := range []bool{false, true} {
		b.Run(fmt.Sprintf("indexed=%v", indexed), func(b *testing.B) {
			r := &Registry{}
			var ix *roleIndex
			if indexed {
				ix = &roleIndex{}
			}
			ops := make([]Operation, 1000)
			for i := range ops {
				ops[i] = Operation{Type: OpUpdateWeights, WeightInfos: []WeightInfo{{Role: fmt.Sprintf("role-%d", i), Weight: 1}}}
				if err := r.applyIndexed(&ops[i], 0, ix); err != nil {
					b.Fatal(err)
				}
			}
			for i := 0; b.Loop(); i++ {
				if err := r.applyIndexed(&ops[i%len(ops)], 0, ix); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
