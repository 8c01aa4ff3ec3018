package badgerstore_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/regent-ha/regent/replog"
	"github.com/regent-ha/regent/replog/badgerstore"
	"github.com/regent-ha/regent/replog/replogtest"
)

// BenchmarkNodeAppend measures durable appends through three nodes on Badger
// stores (one directory each, same disk) over the memory network: each
// Append returns once a quorum has synced and learned it. writers goroutines
// append 256-byte entries concurrently; group commit shares syncs between
// them. Reports appends/s, p50 and p99 latency.
func BenchmarkNodeAppend(b *testing.B) {
	for _, writers := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) { benchNodeAppend(b, writers) })
	}
}

func benchNodeAppend(b *testing.B, writers int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	net := replogtest.NewNetwork(1)
	masters := []string{"a:1", "b:1", "c:1"}
	var nodes []*replog.Node
	var wg sync.WaitGroup
	for _, addr := range masters {
		st, err := badgerstore.Open(filepath.Join(b.TempDir(), "replicated_log"), badgerstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		n, err := replog.New(replog.Config{Addr: addr, Masters: masters, Quorum: 2, AutoInitialize: true}, st)
		if err != nil {
			b.Fatal(err)
		}
		tr := net.Join(addr, n.ID, n.Step)
		wg.Go(func() {
			if err := n.Run(ctx, tr); err != nil {
				b.Error(err)
			}
			st.Close()
		})
		nodes = append(nodes, n)
	}
	defer wg.Wait()
	defer cancel()
	leader := nodes[0]
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := leader.Elect(ctx)
		if err == nil {
			break
		}
		if !errors.Is(err, replog.ErrNotLeader) || time.Now().After(deadline) {
			b.Fatalf("Elect: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // retry while the log initialises
	}
	data := make([]byte, 256)
	lat := make([][]time.Duration, writers)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	start := time.Now()
	var next sync.Mutex
	left := b.N
	var ww sync.WaitGroup
	for w := range writers {
		ww.Go(func() {
			for {
				next.Lock()
				if left == 0 {
					next.Unlock()
					return
				}
				left--
				next.Unlock()
				t0 := time.Now()
				if _, err := leader.Append(ctx, data); err != nil {
					b.Error(err)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	ww.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "appends/s")
		b.ReportMetric(float64(all[len(all)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
}
