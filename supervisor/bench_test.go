package supervisor

import (
	"context"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRestartToReady measures the time from SIGKILL of a ready child to
// the next child reporting ready, as systemd sees it (READY=1 on a notify
// socket), with real processes: detecting the death, reaping, draining the
// pipes, the policy, starting the binary and the child's readiness. Every
// kill follows a ready run and backoff_reset_after is 0, so the policy
// restarts at once: this is the mechanical floor, not a backoff. Run it with
// at least 20 trials: go test -run '^$' -bench RestartToReady -benchtime 50x
func BenchmarkRestartToReady(b *testing.B) {
	sock, ch := listenNotify(b, true)
	cfg := helperConfig("ready;serve")
	cfg.Env = append(cfg.Env, "NOTIFY_SOCKET="+sock)
	cfg.Policy.MaxRestarts = 0
	cfg.Policy.BackoffResetAfter = 0
	cfg.Signals = make(chan os.Signal)
	s, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	res := make(chan error, 1)
	go func() { res <- s.Run(ctx) }()
	waitReady := func() {
		timeout := time.After(30 * time.Second)
		for {
			select {
			case d := <-ch:
				if d == "READY=1" {
					return
				}
			case <-timeout:
				b.Fatal("no READY=1 within 30s")
			}
		}
	}
	waitReady()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		pid := s.Status().ChildPID
		start := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			b.Fatal(err)
		}
		waitReady()
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	cancel()
	if err := <-res; err != nil {
		b.Fatalf("Run = %v", err)
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	b.ReportMetric(float64(q(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(q(0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(0, "ns/op")
	b.Logf("restart to ready over %d trials: p50 %v, p99 %v, max %v", len(lat), q(0.50), q(0.99), lat[len(lat)-1])
}
